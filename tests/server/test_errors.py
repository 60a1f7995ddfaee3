"""Every refusal a client can meet, answered in OpenAI's error schema with its status.

In-process (Starlette's TestClient over the ASGI app): these requests are refused before
any model is needed, so the served model is a path that is never loaded, and one test
proves what happens when loading it is tried.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import API_KEY, requires

pytestmark = pytest.mark.timeout(60)

MISSING_MODEL = "/nonexistent/never-loaded.gguf"
GOOD_MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client() -> Any:
    requires("fastapi", "uvicorn", "httpx", extra="server")
    from fastapi.testclient import TestClient

    from slmkit.server import create_app

    app = create_app({"served": MISSING_MODEL}, api_key=API_KEY, backend="llamacpp")
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as test_client:
        yield test_client


def assert_openai_error(response: Any, status: int, code: str | None, param: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    assert error["message"] and "Traceback" not in error["message"]
    return str(error["message"])


def test_malformed_json_is_400(client: Any) -> None:
    response = client.post("/v1/chat/completions", content=b'{"model": "served", "messages": [')
    assert_openai_error(response, 400, "invalid_json", None)


def test_a_body_that_is_not_an_object_is_400(client: Any) -> None:
    response = client.post("/v1/chat/completions", json=["hi"])
    assert_openai_error(response, 400, "invalid_json", None)


def test_empty_messages_is_400_naming_messages(client: Any) -> None:
    response = client.post("/v1/chat/completions", json={"messages": []})
    message = assert_openai_error(response, 400, "invalid_value", "messages")
    assert "at least one" in message


def test_missing_messages_is_400(client: Any) -> None:
    response = client.post("/v1/chat/completions", json={"model": "served"})
    assert_openai_error(response, 400, "missing_required_parameter", "messages")


def test_unknown_role_is_400_naming_the_message(client: Any) -> None:
    body = {"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}
    response = client.post("/v1/chat/completions", json=body)
    message = assert_openai_error(response, 400, "invalid_value", "messages[1].role")
    assert "'user'" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 0),
        ("top_p", 1.5),
        ("max_tokens", 0),
        ("max_completion_tokens", -3),
        ("frequency_penalty", 0.5),
    ],
)
def test_out_of_range_values_are_400_naming_the_field(client: Any, field: str, value: Any) -> None:
    body = {"messages": GOOD_MESSAGES, field: value}
    response = client.post("/v1/chat/completions", json=body)
    assert_openai_error(response, 400, "invalid_value", field)


def test_n_above_one_is_refused_not_ignored(client: Any) -> None:
    response = client.post("/v1/chat/completions", json={"messages": GOOD_MESSAGES, "n": 2})
    message = assert_openai_error(response, 400, "invalid_value", "n")
    assert "one choice per request" in message


def test_unknown_argument_is_400_naming_it(client: Any) -> None:
    body = {"messages": GOOD_MESSAGES, "temprature": 0.5}
    response = client.post("/v1/chat/completions", json=body)
    message = assert_openai_error(response, 400, "unknown_parameter", "temprature")
    assert "temprature" in message


def test_tools_that_are_not_a_list_are_400(client: Any) -> None:
    body = {"messages": GOOD_MESSAGES, "tools": {"type": "function"}}
    response = client.post("/v1/chat/completions", json=body)
    assert_openai_error(response, 400, "invalid_value", "tools")


def test_several_prompts_in_one_completion_request_are_400(client: Any) -> None:
    response = client.post("/v1/completions", json={"prompt": ["a", "b"]})
    assert_openai_error(response, 400, None, "prompt")


def test_token_id_prompts_are_400(client: Any) -> None:
    response = client.post("/v1/completions", json={"prompt": [1, 2, 3]})
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("prompt")


def test_unknown_model_is_404_listing_the_served_ones(client: Any) -> None:
    body = {"model": "gpt-4o", "messages": GOOD_MESSAGES}
    response = client.post("/v1/chat/completions", json=body)
    message = assert_openai_error(response, 404, "model_not_found", "model")
    assert "gpt-4o" in message and "served" in message
    assert_openai_error(client.get("/v1/models/gpt-4o"), 404, "model_not_found", "model")


def test_unknown_route_is_an_openai_404(client: Any) -> None:
    assert_openai_error(client.get("/v1/nothing-here"), 404, "not_found", None)


def test_wrong_method_is_an_openai_405(client: Any) -> None:
    assert_openai_error(client.get("/v1/chat/completions"), 405, "method_not_allowed", None)


def test_missing_key_is_401(client: Any) -> None:
    response = client.get("/v1/models", headers={"Authorization": ""})
    assert_openai_error(response, 401, "missing_api_key", None)


def test_wrong_key_is_401_and_not_echoed(client: Any) -> None:
    response = client.get("/v1/models", headers={"Authorization": "Bearer sk-wrong-key-42"})
    message = assert_openai_error(response, 401, "invalid_api_key", None)
    assert "sk-wrong-key-42" not in response.text and API_KEY not in message


def test_azure_style_api_key_header_is_accepted(client: Any) -> None:
    response = client.get("/v1/models", headers={"Authorization": "", "api-key": API_KEY})
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["served"]


def test_metrics_need_the_key_but_health_does_not(client: Any) -> None:
    anonymous = {"Authorization": ""}
    assert client.get("/metrics", headers=anonymous).status_code == 401
    assert client.get("/health", headers=anonymous).status_code in (200, 503)


def test_a_model_that_fails_to_load_is_a_500_and_health_says_why(client: Any) -> None:
    response = client.post("/v1/chat/completions", json={"messages": GOOD_MESSAGES})
    message = assert_openai_error(response, 500, "model_unavailable", None)
    assert MISSING_MODEL in message and response.json()["error"]["type"] == "server_error"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "failed" and MISSING_MODEL in health.json()["message"]


def test_errors_are_counted_in_metrics_by_code(client: Any) -> None:
    client.post("/v1/chat/completions", json={"messages": GOOD_MESSAGES, "n": 3})
    client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    text = client.get("/metrics").text
    assert 'slmkit_errors_total{code="invalid_value",endpoint="/v1/chat/completions"} 1' in text
    assert 'slmkit_errors_total{code="invalid_api_key",endpoint="/v1/models"} 1' in text
    assert 'slmkit_queue_depth{model="served"} 0' in text


def test_cors_preflight_and_answers_carry_the_allowed_origin() -> None:
    requires("fastapi", "uvicorn", "httpx", extra="server")
    from fastapi.testclient import TestClient

    from slmkit.server import create_app

    origin = "http://localhost:3000"
    app = create_app({"served": MISSING_MODEL}, api_key=API_KEY, cors_origins=[origin])
    client = TestClient(app)
    preflight = client.options(
        "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200  # no key needed for the browser's preflight
    assert preflight.headers["access-control-allow-origin"] == origin
    refused = client.get("/v1/models", headers={"Origin": origin})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin
    other = client.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
