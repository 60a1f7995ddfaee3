"""The embedding core without a runtime: pooling maths, config reading, input checks,
and the typed errors between generative and embedding models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmkit import errors
from slmkit._llm import LLM
from slmkit.catalog.encoders import is_encoder_folder
from slmkit.embeddings import EmbeddingEngine, check_inputs
from slmkit.embeddings.pooling import EncoderConfig, pool, read_config
from slmkit.params import GenerationParams
from slmkit.types import ModelInfo

from .conftest import make_llm

np = pytest.importorskip("numpy", reason="numpy not installed (it comes with every backend)")

HIDDEN = np.array(
    [
        [[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]],  # last token is padding
        [[0.0, 2.0], [2.0, 0.0], [4.0, -2.0]],
    ]
)
MASK = np.array([[1, 1, 0], [1, 1, 1]])


def test_mean_pooling_ignores_padding() -> None:
    vectors = pool(HIDDEN, MASK, EncoderConfig(("mean_tokens",), False, 8))
    assert vectors.tolist() == [[2.0, 2.0], [2.0, 0.0]]


def test_cls_max_and_last_token_pooling_concatenate_in_order() -> None:
    config = EncoderConfig(("cls_token", "max_tokens", "lasttoken"), False, 8)
    vectors = pool(HIDDEN, MASK, config)
    assert vectors.tolist() == [[1.0, 0.0, 3.0, 4.0, 3.0, 4.0], [0.0, 2.0, 4.0, 2.0, 4.0, -2.0]]


def test_normalised_vectors_have_unit_length() -> None:
    vectors = pool(HIDDEN, MASK, EncoderConfig(("mean_tokens",), True, 8))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], [2**-0.5, 2**-0.5])


def _sentence_transformer(folder: Path, pooling: dict[str, object], normalize: bool) -> Path:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def test_config_is_read_from_modules_pooling_and_sentence_bert_config(tmp_path: Path) -> None:
    folder = _sentence_transformer(tmp_path, {"pooling_mode_cls_token": True}, normalize=True)
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    assert is_encoder_folder(folder)
    assert read_config(folder, 512) == EncoderConfig(("cls_token",), True, 256)


def test_the_position_limit_caps_a_larger_sequence_setting(tmp_path: Path) -> None:
    folder = _sentence_transformer(tmp_path, {"pooling_mode": "mean"}, normalize=False)
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 8192}')
    assert read_config(folder, 512) == EncoderConfig(("mean_tokens",), False, 512)


def test_a_plain_checkpoint_is_mean_pooled_and_not_an_encoder_folder(tmp_path: Path) -> None:
    assert not is_encoder_folder(tmp_path)
    assert read_config(tmp_path, 512) == EncoderConfig(("mean_tokens",), False, 512)


def test_a_module_slmkit_cannot_run_is_named(tmp_path: Path) -> None:
    folder = _sentence_transformer(tmp_path, {"pooling_mode_mean_tokens": True}, normalize=False)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append(
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(errors.InvalidModelFile, match="Dense"):
        read_config(folder, 512)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [([], "non-empty list"), (["ok", ""], "input 1 is empty"), (["ok", 3], "input 1 is int")],
)
def test_bad_inputs_are_refused_naming_the_input(inputs: object, match: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=match):
        check_inputs(inputs)  # type: ignore[arg-type]


def test_a_string_is_one_input() -> None:
    assert check_inputs("hello") == ["hello"]


def test_embed_on_a_generative_model_names_an_embedding_model() -> None:
    with pytest.raises(errors.NotAnEmbeddingModel, match="all-minilm-l6-v2"):
        make_llm().embed("hello")


class _Encoder(EmbeddingEngine):
    """Token ids as a one-dimensional 'hidden state', so pooling is checkable by hand."""

    def __init__(self) -> None:
        self.config = EncoderConfig(("mean_tokens",), False, 4)

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        return ids[:, :, None].astype(np.float32)


def test_chat_generate_and_stream_on_an_encoder_point_to_embed() -> None:
    info = ModelInfo("scripted", "encoder", "", "cpu", 4, is_chat=False)
    llm = LLM(_Encoder(), info, GenerationParams())
    for call in (llm.chat, llm.generate, llm.stream):
        with pytest.raises(errors.NotAGenerativeModel, match=r"embed\(texts\)"):
            call("hello")
