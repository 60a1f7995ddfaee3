"""Real clients against a real `slmkit serve` on 127.0.0.1: the official openai SDK (sync,
async, streaming), azure-ai-inference, and slmkit's own openai backend, on llama.cpp with
the offline models."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import (
    API_KEY,
    BASE_MODEL,
    CHAT_MODEL,
    CONTEXT_LENGTH,
    QUESTION,
    ServerProcess,
    requires,
)

pytestmark = pytest.mark.timeout(400)

RAW_PROMPT = "Question: What is the capital of France?\nAnswer:"


def openai_client(server: ServerProcess, key: str = API_KEY) -> Any:
    requires("openai", extra="hosted")
    import openai

    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=300)


def ask() -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTION}]


def test_openai_chat_says_paris_streamed_and_not_with_equal_text_and_usage(
    server: ServerProcess,
) -> None:
    client = openai_client(server)
    whole = client.chat.completions.create(model=CHAT_MODEL, messages=ask(), max_tokens=16)
    assert "Paris" in whole.choices[0].message.content
    assert whole.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=ask(),
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    # the spec: usage null on every chunk, then one last chunk with no choices and the usage
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens


def test_stream_without_include_usage_sends_no_usage(server: ServerProcess) -> None:
    client = openai_client(server)
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=ask(), max_tokens=4, stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_async_openai_client_runs_two_requests_and_both_answer(server: ServerProcess) -> None:
    requires("openai", extra="hosted")
    import openai

    async def both() -> list[str]:
        client = openai.AsyncOpenAI(base_url=server.url, api_key=API_KEY, max_retries=0)
        async with client:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(model=CHAT_MODEL, messages=ask(), max_tokens=8)
                    for _ in range(2)
                )
            )
        return [a.choices[0].message.content or "" for a in answers]

    assert all("Paris" in text for text in asyncio.run(both()))


def test_completions_on_the_base_model_streamed_equals_whole(server: ServerProcess) -> None:
    client = openai_client(server)
    whole = client.completions.create(model=BASE_MODEL, prompt=RAW_PROMPT, max_tokens=4)
    assert "Paris" in whole.choices[0].text
    assert whole.usage.completion_tokens == 4 and whole.choices[0].finish_reason == "length"
    chunks = list(
        client.completions.create(
            model=BASE_MODEL,
            prompt=RAW_PROMPT,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_max_completion_tokens_stop_and_seed_reach_the_model(server: ServerProcess) -> None:
    client = openai_client(server)
    capped = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Count from 1 to 50, separated by spaces."}],
        max_completion_tokens=3,
    )
    assert capped.usage.completion_tokens == 3 and capped.choices[0].finish_reason == "length"
    stopped = client.completions.create(
        model=BASE_MODEL, prompt="1, 2, 3, 4,", max_tokens=30, stop=[" 8"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert "5" in stopped.choices[0].text and " 8" not in stopped.choices[0].text
    sampled = [
        client.completions.create(
            model=BASE_MODEL, prompt="Once upon a time", max_tokens=12, temperature=1.0,
            top_p=0.95, seed=seed,
        ).choices[0].text
        for seed in (7, 7, 8)
    ]  # fmt: skip
    assert sampled[0] == sampled[1]  # the seed reached the sampler...
    assert sampled[0] != sampled[2]  # ...and the temperature did: it does sample


def test_models_list_and_retrieve(server: ServerProcess) -> None:
    client = openai_client(server)
    assert [m.id for m in client.models.list().data] == [CHAT_MODEL, BASE_MODEL]
    assert client.models.retrieve(BASE_MODEL).id == BASE_MODEL


def test_over_long_prompt_is_refused_with_context_length_exceeded(server: ServerProcess) -> None:
    import openai

    client = openai_client(server)
    long = [{"role": "user", "content": "tell me more " * CONTEXT_LENGTH}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT_MODEL, messages=long, max_tokens=8)
    assert caught.value.status_code == 400
    assert caught.value.code == "context_length_exceeded"
    assert "context length" in caught.value.message


PLACE = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def test_json_schema_response_format_constrains_the_answer_streamed_and_not(
    server: ServerProcess,
) -> None:
    client = openai_client(server)
    ask_json = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": f"{QUESTION} Answer as JSON."}],
        "max_tokens": 40,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "place", "schema": PLACE, "strict": True},
        },
    }
    whole = client.chat.completions.create(**ask_json)
    assert whole.choices[0].finish_reason == "stop"
    place = json.loads(whole.choices[0].message.content)
    assert set(place) == {"city", "country"} and "Paris" in place["city"]
    chunks = client.chat.completions.create(**ask_json, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        whole.choices[0].message.content
    )


def test_a_response_format_slmkit_cannot_read_is_400_naming_it(server: ServerProcess) -> None:
    import openai

    client = openai_client(server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=ask(), max_tokens=4, response_format={"type": "xml"}
        )
    assert caught.value.param == "response_format"
    assert "json_schema" in caught.value.message  # the message says what it accepts


def test_chat_on_a_base_model_is_400(server: ServerProcess) -> None:
    import openai

    client = openai_client(server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=BASE_MODEL, messages=ask(), max_tokens=4)
    assert caught.value.code == "model_not_chat"


def test_wrong_key_is_an_authentication_error(server: ServerProcess) -> None:
    import openai

    with pytest.raises(openai.AuthenticationError) as caught:
        openai_client(server, key="sk-not-the-key-000").models.list()
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"


def test_azure_ai_inference_client_gets_paris(server: ServerProcess) -> None:
    requires("azure.ai.inference", extra="hosted")
    from azure.ai.inference import ChatCompletionsClient
    from azure.ai.inference.models import UserMessage
    from azure.core.credentials import AzureKeyCredential

    client = ChatCompletionsClient(endpoint=server.url, credential=AzureKeyCredential(API_KEY))
    with client:
        whole = client.complete(messages=[UserMessage(QUESTION)], max_tokens=16)
        assert "Paris" in whole.choices[0].message.content
        assert whole.usage.prompt_tokens > 0
        streamed = client.complete(messages=[UserMessage(QUESTION)], max_tokens=16, stream=True)
        text = "".join(u.choices[0].delta.content or "" for u in streamed if u.choices)
    assert text == whole.choices[0].message.content


def test_slmkit_openai_backend_chats_and_generates_through_the_server(
    server: ServerProcess,
) -> None:
    requires("openai", extra="hosted")
    import slmkit

    options = {"base_url": server.url, "api_key": API_KEY}
    with slmkit.load(CHAT_MODEL, backend="openai", **options) as llm:
        reply = llm.chat(QUESTION, max_tokens=16)
        assert "Paris" in reply.text and reply.usage.prompt_tokens > 0
        streamed = "".join(c.text for c in llm.stream(ask(), max_tokens=16))  # type: ignore[arg-type]
        assert streamed == reply.text
    with slmkit.load(BASE_MODEL, backend="openai", **options) as base:
        answer = base.generate(RAW_PROMPT, max_tokens=4, repetition_penalty=1.0)
        assert "Paris" in answer.text and answer.usage.completion_tokens == 4


def test_health_and_metrics(server: ServerProcess) -> None:
    import httpx

    assert httpx.get(f"{server.base}/health").json() == {"status": "ok"}
    metrics = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "slmkit_requests_total",
        "slmkit_errors_total",
        "slmkit_queue_depth",
        "slmkit_completion_tokens_total",
        "slmkit_time_to_first_token_seconds_bucket",
        "slmkit_time_per_output_token_seconds_bucket",
    ):
        assert f"# TYPE {name.removesuffix('_bucket')}" in text
    assert f'slmkit_model_ready{{model="{CHAT_MODEL}"}} 1' in text


def test_the_key_never_reaches_the_log(server: ServerProcess) -> None:
    import httpx

    httpx.get(f"{server.url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
    httpx.get(f"{server.url}/models", headers={"Authorization": "Bearer sk-wrong-key-in-log"})
    log = server.log()
    assert "GET /v1/models" in log  # the access log is on
    assert API_KEY not in log and "sk-wrong-key-in-log" not in log
    assert "API key required" in log


def test_a_long_prompt_without_max_tokens_gets_the_rest_of_the_context(
    server: ServerProcess,
) -> None:
    import openai

    client = openai_client(server)
    prompt = "hello " * (CONTEXT_LENGTH - 24)  # fits, but not with the default 256 more
    answer = client.completions.create(model=BASE_MODEL, prompt=prompt)
    usage = answer.usage
    assert usage.prompt_tokens > CONTEXT_LENGTH - 256
    assert 1 <= usage.completion_tokens <= CONTEXT_LENGTH - usage.prompt_tokens
    with pytest.raises(openai.BadRequestError) as caught:  # asked for more than fits: refused
        client.completions.create(model=BASE_MODEL, prompt=prompt, max_tokens=256)
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "prompt"
