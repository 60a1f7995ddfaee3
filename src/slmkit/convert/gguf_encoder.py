"""``--to gguf`` for a BERT embedding model: a GGUF llama.cpp runs with ``embedding=True``.

Written with the ``gguf`` package the way llama.cpp's own ``convert_hf_to_gguf.py`` writes
a BertModel: tensor names from gguf's BERT name map, the WordPiece vocabulary in
llama.cpp's phantom-space form (``##ing`` -> ``ing``, ``word`` -> ``▁word``, ``[CLS]``
as is), pooling type from the model's ``1_Pooling/config.json``. fp32, so the vectors
match the checkpoint's; the tokenizer and pooling files are kept next to model.gguf.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import ConversionError, InvalidRequest
from . import Source
from .onnx_encoder import copy_configs
from .progress import step

NAME = "gguf"
PACKAGES = (("gguf", "gguf"), ("safetensors", "safetensors"), ("numpy", "numpy"))
EXTRA = "transformers"
GGUF_FILE = "model.gguf"
_POOLING = {"mean_tokens": "MEAN", "cls_token": "CLS", "lasttoken": "LAST"}


def variant(**options: Any) -> str:
    """One variant (fp32): the file is small and int8 would cost accuracy for little."""
    if options:
        raise InvalidRequest(
            f"convert --to gguf of an embedding model takes no options; got {', '.join(options)}",
            field=next(iter(options)),
        )
    return "fp32"


def build(source: Source, out: Path, **options: Any) -> None:
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    from ..embeddings.pooling import position_limit, read_config

    assert source.folder is not None
    folder = source.folder
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or not (folder / "model.safetensors").is_file():
        raise ConversionError(
            f"convert --to gguf writes BERT encoders from model.safetensors; {folder.name} is "
            f"{config.get('model_type')!r}: use --to onnx for it"
        )
    copy_configs(folder, out)
    pooling = read_config(folder, position_limit(folder)).pooling
    if len(pooling) != 1 or pooling[0] not in _POOLING:
        raise ConversionError(
            f"llama.cpp pools by mean, CLS or last token; {folder.name} pools by {pooling}"
        )
    step("writing the BERT GGUF (gguf package)")
    writer = gguf.GGUFWriter(str(out / GGUF_FILE), "bert")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(getattr(gguf.PoolingType, _POOLING[pooling[0]]))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_vocab(writer, gguf, out, config)
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    for name, array in load_file(str(folder / "model.safetensors")).items():
        if name.endswith("position_ids") or name.startswith("pooler."):
            continue  # a buffer, and the head sentence-transformers does not use
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ConversionError(f"{folder.name}: no GGUF name for tensor {name}")
        writer.add_tensor(new, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_vocab(writer: Any, gguf: Any, out: Path, config: dict[str, Any]) -> None:
    tokenizer = json.loads((out / "tokenizer.json").read_text())
    if tokenizer.get("model", {}).get("type") != "WordPiece":
        raise ConversionError("convert --to gguf needs a WordPiece (BERT) tokenizer.json")
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    special = {token["content"] for token in tokenizer.get("added_tokens", [])}
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom(token) for token, _ in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t, _ in vocab]
    )
    log = logging.getLogger("gguf.vocab")
    level = log.level
    log.setLevel(logging.ERROR)  # it warns about [CLS], which llama.cpp's BERT vocab knows
    try:
        gguf.SpecialVocab(out, n_vocab=len(vocab)).add_to_gguf(writer, quiet=True)
    finally:
        log.setLevel(level)


def _phantom(token: str) -> str:
    """llama.cpp's WPM vocabulary marks word starts, not continuations."""
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token
