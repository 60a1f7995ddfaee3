"""A third-party backend written only against slmkit's engine contract (v2).

It is installed by the contract suite's conftest as a separate distribution with its own
``slmkit.backends`` entry point (``SLMKIT_CONTRACT_BACKENDS=thirdparty``), then runs the
same behavioural suite as the built-ins. It drives llama-cpp-python itself and shares no
code with slmkit's own llamacpp adapter: what passes here is what the contract promises.
"""

from __future__ import annotations

import importlib.util

from slmkit.backends.base import Backend, Capabilities, Token, TokenEngine
from slmkit.catalog.offline import assemble
from slmkit.errors import ModelNotFound


class ThirdPartyEngine(TokenEngine):
    capabilities = Capabilities()

    def __init__(self, path: str, context: int) -> None:
        import llama_cpp

        self._llama = llama_cpp.Llama(model_path=path, n_ctx=context, verbose=False)
        model = self._llama._model
        self.artifact = path
        self.context_length = self._llama.n_ctx()
        self.chat_template = self._llama.metadata.get("tokenizer.chat_template")
        self.adds_bos = bool(model.add_bos_token())
        self.bos_token = self._text(self._llama.token_bos())
        self.eos_token = self._text(self._llama.token_eos())
        self._vocab = model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self.eos_token_ids = frozenset(
            t for t in range(self._llama.n_vocab()) if self._is_eog(self._vocab, t)
        )

    def _text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", "replace")

    def tokenize(self, text, *, add_special):
        return self._llama.tokenize(text.encode(), add_bos=add_special, special=add_special)

    def decode(self, token_ids):
        return self._llama.detokenize(list(token_ids)).decode("utf-8", "replace")

    def run(self, request):
        params = request.params
        self._llama.reset()
        if params.seed is not None:
            self._llama.set_seed(params.seed)
        tokens = self._llama.generate(
            list(request.prompt_ids),
            temp=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.0,
            repeat_penalty=params.repetition_penalty,
            reset=True,
        )
        try:
            for token in tokens:
                yield Token(token)
        finally:
            tokens.close()

    def close(self):
        self._llama.close()


class ThirdPartyBackend(Backend):
    name = "thirdparty"
    extra = "thirdparty"
    description = "a plugin written against the engine contract (tests only)"

    @classmethod
    def check(cls, hardware=None):
        from slmkit.backends.base import Availability

        installed = importlib.util.find_spec("llama_cpp") is not None
        return Availability(installed, installed, "" if installed else "needs llama-cpp-python")

    def load(self, model, options):
        if model.spec is None or model.spec.packaged is None:
            raise ModelNotFound(f"thirdparty runs only the offline GGUFs, not {model.name!r}")
        return ThirdPartyEngine(str(assemble(model.spec.packaged)), model.default_context)
