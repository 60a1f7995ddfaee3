"""Configuration, check() and secrets: what a user sees before and around a request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import slmkit
from slmkit import errors, registry

from . import faults as f
from .conftest import HOSTED_BACKENDS, backend_options, requires_hosted_extra
from .faults import FaultServer

KEY = "sk-test-SECRET-0123456789abcdefABCDEF"


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_the_key_never_appears_in_repr_errors_or_logs(
    backend: str, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    faults.queue(f.status(401, f"Incorrect API key provided: {KEY}"))
    with caplog.at_level(logging.DEBUG):
        llm = slmkit.load("fault-model", backend=backend, base_url=faults.url, api_key=KEY)
        with pytest.raises(errors.AuthenticationError) as info:
            llm.chat("hi")
    assert faults.seen[0].headers.get("authorization", "").endswith(KEY) or (
        faults.seen[0].headers.get("api-key") == KEY
    )  # the key was sent...
    shown = [repr(llm), str(llm.info), repr(llm._engine), str(info.value), repr(info.value)]
    shown += [record.getMessage() for record in caplog.records]
    shown += [str(arg) for record in caplog.records for arg in (record.args or ())]
    assert not [text for text in shown if KEY in text]  # ...and shown nowhere


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_the_key_option_is_a_secret_in_parsed_options(backend: str) -> None:
    requires_hosted_extra()
    options = registry.get_backend(backend).parse_options({"api_key": KEY, "base_url": "x"})
    assert KEY not in repr(options) and KEY not in str(options)


@pytest.mark.parametrize(
    ("backend", "needs"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("azure", "AZURE_AI_CHAT_ENDPOINT"),
        ("nim", "NVIDIA_API_KEY"),
        ("github", "retired on 2026-07-30"),
    ],
)
def test_check_says_what_an_unconfigured_backend_needs(backend: str, needs: str) -> None:
    requires_hosted_extra()
    status = registry.get_backend(backend).check()
    assert status.installed and not status.usable
    assert needs in status.reason


@pytest.mark.parametrize(
    ("backend", "env"),
    [
        ("openai", {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}),
        ("openai", {"OPENAI_API_KEY": KEY}),
        ("azure", {"AZURE_AI_CHAT_ENDPOINT": "http://127.0.0.1:9", "AZURE_AI_CHAT_KEY": KEY}),
        ("nim", {"NVIDIA_API_KEY": KEY}),
        ("nim", {"NIM_BASE_URL": "http://127.0.0.1:9/v1"}),
        ("github", {"GITHUB_MODELS_BASE_URL": "http://127.0.0.1:9/v1"}),
    ],
)
def test_check_is_usable_once_the_environment_configures_it(
    backend: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    requires_hosted_extra()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = registry.get_backend(backend).check()
    assert status.usable, status.reason
    assert KEY not in status.reason


def test_the_environment_configures_the_openai_backend(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", faults.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert slmkit.load("fault-model", backend="openai").chat("hi").text == "Hello world!"
    assert faults.seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_slmkit_prefixed_variables_win(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SLMKIT_OPENAI_BASE_URL", faults.url)
    assert slmkit.load("fault-model", backend="openai").chat("hi").text == "Hello world!"


def test_a_self_hosted_server_needs_no_key(faults: FaultServer) -> None:
    slmkit.load("fault-model", backend="openai", base_url=faults.url).chat("hi")
    assert "authorization" not in faults.seen[0].headers or "no-key" in str(
        faults.seen[0].headers["authorization"]
    )


@pytest.mark.parametrize(
    ("backend", "env"), [("nim", "NVIDIA_API_KEY"), ("github", "GITHUB_TOKEN")]
)
def test_the_public_endpoint_without_a_key_names_the_env_var(backend: str, env: str) -> None:
    requires_hosted_extra()
    with pytest.raises(errors.AuthenticationError, match=env):
        slmkit.load("some/model", backend=backend)


def test_azure_without_an_endpoint_says_which_variables_to_set() -> None:
    requires_hosted_extra()
    with pytest.raises(errors.BackendUnavailable, match="AZURE_AI_CHAT_ENDPOINT"):
        slmkit.load("some-model", backend="azure")


def test_a_catalog_alias_maps_to_the_service_model_id(faults: FaultServer) -> None:
    slmkit.load("phi-3.5-mini", backend="nim", base_url=faults.url).chat("hi")
    assert faults.seen[0].body["model"] == "microsoft/phi-3.5-mini-instruct"


def test_a_raw_service_model_id_is_sent_as_is(faults: FaultServer) -> None:
    slmkit.load("meta/llama-3.1-8b-instruct", backend="nim", base_url=faults.url).chat("hi")
    assert faults.seen[0].body["model"] == "meta/llama-3.1-8b-instruct"


def test_openai_sends_an_alias_without_an_openai_id_as_the_alias(faults: FaultServer) -> None:
    slmkit.load("phi-3.5-mini", backend="openai", base_url=faults.url).chat("hi")
    assert faults.seen[0].body["model"] == "phi-3.5-mini"


def test_an_alias_without_an_id_on_the_service_is_refused_with_the_fix() -> None:
    requires_hosted_extra()
    with pytest.raises(errors.ModelNotFound, match="service's own model id"):
        slmkit.load("gemma-3-270m", backend="azure", base_url="http://127.0.0.1:9", api_key="k")


@pytest.mark.parametrize("backend", ["azure", "github"])
@pytest.mark.parametrize(("param", "value"), [("top_k", 40), ("repetition_penalty", 1.2)])
def test_chat_only_services_refuse_what_they_cannot_honour(
    backend: str, param: str, value: Any, faults: FaultServer
) -> None:
    llm = slmkit.load("fault-model", backend=backend, **backend_options(backend, faults.url))
    with pytest.raises(errors.UnsupportedFeature, match=f"{backend}.*{param}"):
        llm.chat("hi", **{param: value})
    with pytest.raises(errors.UnsupportedFeature, match="chat"):
        llm.generate("hi")
    assert faults.requests == 0


def test_openai_compatible_servers_get_top_k_and_repetition_penalty(faults: FaultServer) -> None:
    llm = slmkit.load("fault-model", backend="openai", base_url=faults.url)
    llm.chat("hi", top_k=40, repetition_penalty=1.2, seed=7)
    body = faults.seen[0].body
    assert body["top_k"] == 40
    assert body["repetition_penalty"] == body["repeat_penalty"] == 1.2
    assert body["seed"] == 7
    assert body["stream_options"] == {"include_usage": True}


def test_unknown_options_are_refused_naming_the_known_ones() -> None:
    requires_hosted_extra()
    with pytest.raises(errors.InvalidRequest, match="max_retries"):
        slmkit.load("m", backend="openai", base_url="http://127.0.0.1:9/v1", retries=3)


def test_a_local_file_is_refused_with_how_to_serve_it(tmp_path: Any) -> None:
    requires_hosted_extra()
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(errors.ModelNotFound, match=r"llama_cpp\.server"):
        slmkit.load(str(model), backend="openai", base_url="http://127.0.0.1:9/v1")


def test_the_internet_guard_refuses_public_addresses() -> None:
    import socket

    from .conftest import InternetBlocked

    with pytest.raises(InternetBlocked):
        socket.create_connection(("93.184.216.34", 443), timeout=1)
    with pytest.raises(InternetBlocked):
        socket.getaddrinfo("api.openai.com", 443)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _everything_shown(llm: Any, exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    import traceback

    shown = [repr(llm), str(llm.info), repr(llm._engine), llm.info.artifact]
    shown += [f"{type(e).__name__}: {e!s} {e!r}" for e in _chain(exc)]
    shown += ["".join(traceback.format_exception(exc))]
    shown += [record.getMessage() for record in caplog.records]
    return "\n".join(shown)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_an_echoed_key_is_absent_from_the_whole_exception_chain(
    backend: str, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    faults.queue(f.status(401, f'{{"error": "Incorrect API key provided: {KEY}"}}'))
    llm = slmkit.load("fault-model", backend=backend, base_url=faults.url, api_key=KEY)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthenticationError) as info:
        llm.chat("hi")
    assert KEY not in _everything_shown(llm, info.value, caplog)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_a_stream_broken_by_the_server_keeps_the_key_out_of_the_chain(
    backend: str, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    faults.queue(f.cut(after_chunks=1))
    llm = slmkit.load("fault-model", backend=backend, base_url=faults.url, api_key=KEY)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.StreamInterrupted) as info:
        llm.chat("hi")
    assert KEY not in _everything_shown(llm, info.value, caplog)


URL_KEY = "urlkey-SECRET-9876543210zyxwvu"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "make_url",
    [
        lambda url: url.replace("http://", f"http://user:{URL_KEY}@"),
        lambda url: url.replace("http://", f"http://{URL_KEY}@"),
        lambda url: f"{url}?api-key={URL_KEY}",
        lambda url: f"{url}?sig={URL_KEY}&api-version=2024-05-01",
    ],
    ids=["user-and-password", "user-only", "api-key-query", "sas-signature"],
)
def test_a_key_inside_base_url_is_never_shown(
    make_url: Any, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    faults.queue(f.status(500, f"upstream said {URL_KEY}"))
    base_url = make_url(faults.url)
    llm = slmkit.load("fault-model", backend="openai", base_url=base_url, max_retries=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.ServiceError) as info:
        llm.chat("hi")
    shown = _everything_shown(llm, info.value, caplog)
    assert KEY not in shown and URL_KEY not in shown
    assert "127.0.0.1" in shown  # the endpoint is still named, just not its credentials


def test_display_url_masks_credentials_and_keeps_the_rest() -> None:
    from slmkit.backends._secrets import display_url, url_secrets

    url = f"https://me:{URL_KEY}@host.example/v1?api-version=2024&code={URL_KEY}"
    assert display_url(url) == "https://***@host.example/v1?api-version=2024&code=***"
    assert url_secrets(url) == ["me", URL_KEY, URL_KEY]
    assert display_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
