"""Chat prompt token ids in which only the template's own markers are special tokens.

Tokenizing the whole rendered chat with special-token parsing on would let a user
message holding ``<|im_start|>system`` open a real system turn. So the template is
rendered once with each message's content replaced by a sentinel (a string that
validated text can never hold: it contains NUL), the render is split at the
sentinels, and the pieces are tokenized apart: the template's pieces with special
tokens, each message's content as plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .templates import render_chat

if TYPE_CHECKING:
    from .backends.base import TokenEngine
    from .types import Message

__all__ = ["chat_prompt_ids", "encode_plain", "render_prompt", "special_token_strings"]

_SENTINEL = "\x00slmkit-content-{}\x00"
_SENTINELS = re.compile("\x00slmkit-content-(\\d+)\x00")


def render_prompt(
    engine: TokenEngine,
    template: str,
    messages: list[Message],
    tools: list[dict[str, Any]] | None = None,
) -> str:
    """The rendered chat as text, without the BOS text the tokenizer adds by itself.

    ``tools`` (OpenAI-shaped) go to the template's own tools section."""
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    text = render_chat(
        template, messages, bos_token=engine.bos_token, eos_token=engine.eos_token, **extra
    )
    return _without_bos_text(engine, text)


def chat_prompt_ids(
    engine: TokenEngine,
    template: str,
    messages: list[Message],
    *,
    special_tokens_in_content: bool = False,
    tools: list[dict[str, Any]] | None = None,
) -> list[int]:
    """Token ids of the chat ready for the assistant's turn (BOS included where wanted).

    ``special_tokens_in_content=True`` restores the old behaviour: marker strings in
    a message become control tokens. Only for content the application itself wrote.
    An empty content (an assistant turn that only called tools) is left as it is: a
    template may write it only when it is not empty.
    """
    if special_tokens_in_content:
        return engine.tokenize(render_prompt(engine, template, messages, tools), add_special=True)
    real = render_prompt(engine, template, messages, tools)
    masked = [
        {**m, "content": _SENTINEL.format(i)} if m["content"] else m for i, m in enumerate(messages)
    ]
    pieces = _SENTINELS.split(render_prompt(engine, template, masked, tools))  # type: ignore[arg-type]
    markup, contents = pieces[0::2], [messages[int(i)]["content"] for i in pieces[1::2]]
    texts = _contents_as_rendered(real, markup, contents)
    if "".join(_interleave(markup, texts)) != real:  # the markup depends on the content
        texts = contents
    ids = engine.tokenize(markup[0], add_special=True)
    for text, piece in zip(texts, markup[1:], strict=True):
        ids += engine.tokenize(text, add_special=False) if text else []
        ids += engine.tokenize_markup(piece) if piece else []
    return ids


def _without_bos_text(engine: TokenEngine, text: str) -> str:
    if engine.adds_bos and engine.bos_token and text.startswith(engine.bos_token):
        return text[len(engine.bos_token) :]  # the tokenizer adds it: never twice
    return text


def _interleave(markup: list[str], texts: list[str]) -> list[str]:
    parts = [markup[0]]
    for text, piece in zip(texts, markup[1:], strict=True):
        parts += [text, piece]
    return parts


def _contents_as_rendered(real: str, markup: list[str], contents: list[str]) -> list[str]:
    """Each content as the template wrote it (a template may ``trim`` it, say).

    ``real`` is the render with the true contents; it equals markup[0] + c0 +
    markup[1] + c1 + ... Where a content was transformed in a way not tried here,
    the text up to the next markup piece is taken.
    """
    position = len(markup[0])
    rendered: list[str] = []
    for content, following in zip(contents, markup[1:], strict=True):
        for candidate in (content, content.strip(), content.lstrip(), content.rstrip()):
            end = position + len(candidate)
            if real.startswith(candidate, position) and real.startswith(following, end):
                break
        else:
            end = real.find(following, position) if following else len(real)
            candidate = real[position:end]
        rendered.append(candidate)
        position = end + len(following)
    return rendered


def encode_plain(
    encode: Callable[[str], Sequence[int]], text: str, specials: frozenset[str]
) -> list[int]:
    """Encode ``text`` as plain text with a tokenizer that always parses special tokens.

    Each special-token string found in the text is encoded in two halves, so neither
    half is a special token; the rest is encoded as is.
    """
    found = [s for s in specials if len(s) > 1 and s in text]
    if not found:
        return list(encode(text)) if text else []
    pattern = re.compile("|".join(re.escape(s) for s in sorted(found, key=len, reverse=True)))
    ids: list[int] = []
    start = 0
    for match in pattern.finditer(text):
        ids += encode_plain(encode, text[start : match.start()], specials)
        marker = match.group()
        ids += encode_plain(encode, marker[:1], specials)
        ids += encode_plain(encode, marker[1:], specials)
        start = match.end()
    ids += encode_plain(encode, text[start:], specials)
    return ids


def special_token_strings(folder: Path) -> frozenset[str]:
    """The special-token strings a Hugging Face tokenizer in ``folder`` declares.

    Read from tokenizer.json's ``added_tokens`` and tokenizer_config.json's
    ``added_tokens_decoder``; a file that is missing or unreadable adds nothing.
    """
    found: set[str] = set()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entries = data.get("added_tokens") if name == "tokenizer.json" else None
        if name == "tokenizer_config.json":
            decoder = data.get("added_tokens_decoder")
            entries = list(decoder.values()) if isinstance(decoder, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("special") and entry.get("content"):
                found.add(str(entry["content"]))
    return frozenset(found)
