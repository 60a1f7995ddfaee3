"""A small deterministic in-process engine for the core's unit tests.

Tokens are UTF-8 bytes (ids 0-255) plus BOS=256, EOS=257 and two ChatML markers, so tests can split
characters and stop sequences across tokens exactly as a real tokenizer might.
The "model" replays a script: with temperature 0 it emits ``reply`` then EOS;
with temperature > 0 it samples bytes of ``reply`` with the request's seed.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator, Sequence

from slmkit.backends.base import Capabilities, Request, Token, TokenEngine

BOS, EOS = 256, 257
#: Special-token strings: one id each when parsed as markup, bytes when plain text.
MARKERS = {"<|im_start|>": 258, "<|im_end|>": 259}
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


class ScriptedEngine(TokenEngine):
    def __init__(
        self,
        reply: str = "Hello, world!",
        *,
        endless: bool = False,
        context_length: int = 2_000_000,
        chat_template: str | None = TEMPLATE,
        adds_bos: bool = True,
        yields_eos: bool = True,
    ) -> None:
        self.reply = reply.encode("utf-8")
        self.endless = endless
        self.context_length = context_length
        self.chat_template = chat_template
        self.adds_bos = adds_bos
        self.yields_eos = yields_eos  # False: end silently, as some runtimes do at EOS
        self.bos_token, self.eos_token = "<s>", "</s>"
        self.eos_token_ids = frozenset({EOS})
        self.artifact = "scripted"
        self.prompts: list[list[int]] = []
        self.produced = 0  # tokens actually computed, to prove early stops stop the work
        self.closed = False
        self.active = threading.Event()  # set while a generation runs

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        ids: list[int] = []
        if add_special and self.adds_bos:
            ids.append(BOS)
        if add_special and text.startswith("<s>"):
            ids.append(BOS)
            text = text[3:]
        if not add_special:
            return ids + list(text.encode("utf-8"))
        for piece in re.split(f"({'|'.join(map(re.escape, MARKERS))})", text):
            ids.extend([MARKERS[piece]] if piece in MARKERS else piece.encode("utf-8"))
        return ids

    def decode(self, token_ids: Sequence[int]) -> str:
        return bytes(t for t in token_ids if t < 256).decode("utf-8", errors="replace")

    #: No top_k: lets the tests see the core refuse an undeclared sampling parameter.
    capabilities = Capabilities(sampling=frozenset({"repetition_penalty"}))

    def run(self, request: Request) -> Iterator[Token]:
        params = request.params
        self.prompts.append(list(request.prompt_ids or ()))
        rng = random.Random(params.seed)
        self.active.set()
        try:
            position = 0
            while True:
                if params.temperature == 0:
                    if position < len(self.reply):
                        token = self.reply[position]
                    elif self.endless:
                        token = self.reply[position % len(self.reply)]
                    elif self.yields_eos:
                        token = EOS
                    else:
                        return
                else:
                    token = rng.choice(self.reply[:1] + b"abcdefgh")
                position += 1
                self.produced += 1
                yield Token(token)
        finally:
            self.active.clear()

    def close(self) -> None:
        self.closed = True
