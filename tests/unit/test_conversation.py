"""llm.conversation(): history kept, turns appended only when finished, saved and loaded."""

from __future__ import annotations

import asyncio

import pytest

from slmkit import errors
from slmkit.conversation import Conversation

from .conftest import make_llm
from .scripted_engine import ScriptedEngine


def test_a_turn_is_what_stateless_chat_gives_on_the_same_history(llm, engine) -> None:
    conv = llm.conversation(system="Be brief.")
    first = conv.chat("Hi", max_tokens=5)
    assert [m["role"] for m in conv.messages] == ["system", "user", "assistant"]
    assert conv.messages[-1]["content"] == first.text
    second = conv.chat("Again", max_tokens=5)
    stateless = llm.chat(conv.messages[:-1], max_tokens=5)
    assert second.text == stateless.text
    assert engine.prompts[-1] == engine.prompts[-2]  # the same prompt, token for token
    assert len(conv) == 5


def test_a_streamed_turn_is_appended_once_it_finished(llm) -> None:
    conv = llm.conversation()
    text = "".join(chunk.text for chunk in conv.stream("Hi", max_tokens=5))
    assert conv.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": text},
    ]


def test_an_abandoned_or_failed_turn_leaves_the_history_as_it_was(llm) -> None:
    conv = llm.conversation()
    stream = conv.stream("Hi", max_tokens=5)
    next(stream)
    stream.close()
    with pytest.raises(errors.InvalidRequest):
        conv.chat("Hi", temperature=-1)
    assert conv.messages == []


def test_async_turns_append_too(llm) -> None:
    conv = llm.conversation()

    async def run() -> str:
        await conv.achat("Hi", max_tokens=3)
        return "".join([c.text async for c in conv.astream("More", max_tokens=3)])

    streamed = asyncio.run(run())
    assert [m["role"] for m in conv.messages] == ["user", "assistant"] * 2
    assert conv.messages[-1]["content"] == streamed


def test_copy_is_independent_and_json_round_trips(llm, tmp_path) -> None:
    conv = llm.conversation(system="S")
    conv.chat("Hi", max_tokens=3)
    twin = conv.copy()
    twin.chat("Only in the copy", max_tokens=3)
    assert len(conv) == 3 and len(twin) == 5
    path = tmp_path / "chat.json"
    twin.save(path)
    again = Conversation.load(llm, path)
    assert again.messages == twin.messages
    with pytest.raises(errors.InvalidRequest, match="not a saved conversation"):
        Conversation.from_json(llm, '{"messages": []}')


def test_started_from_messages_and_refusing_what_it_cannot_do(llm) -> None:
    start = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    conv = llm.conversation(start)
    assert conv.messages == start and conv.messages is not start
    with pytest.raises(errors.InvalidRequest, match="system"):
        llm.conversation(start, system="Another")
    with pytest.raises(errors.UnsupportedFeature, match="tools"):
        llm.conversation(tools=[{"type": "function"}])
    with pytest.raises(errors.NotAChatModel):
        make_llm(ScriptedEngine(), is_chat=False).conversation()
