"""Errors in OpenAI's schema: ``{"error": {"message", "type", "param", "code"}}``.

Every failure a client can see goes through :class:`APIError`; slmkit's own errors are
mapped once here (:func:`from_slmkit`), pydantic's validation errors once
(:func:`from_validation`), and anything else becomes a bare 500 whose details stay in the
server log, never in the answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import (
    AuthenticationError,
    BackendError,
    ContextLengthExceeded,
    HostedError,
    InvalidRequest,
    ModelError,
    NotAChatModel,
    RateLimitError,
    RequestTimeout,
    SlmkitError,
    UnsupportedFeature,
)

__all__ = ["APIError", "from_slmkit", "from_validation"]


class APIError(Exception):
    """An answer that is an OpenAI error body with an HTTP status (and maybe headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def from_slmkit(exc: SlmkitError) -> APIError:
    """The status and body a client gets for one of slmkit's errors."""
    message = str(exc)
    if isinstance(exc, ContextLengthExceeded):
        return invalid(message, exc.field, "context_length_exceeded")
    if isinstance(exc, NotAChatModel):
        return invalid(message, "messages", "model_not_chat")
    if isinstance(exc, InvalidRequest):
        return invalid(message, exc.field, "invalid_value")
    if isinstance(exc, UnsupportedFeature):
        return invalid(message, None, "unsupported_parameter")
    if isinstance(exc, RateLimitError):
        retry = str(max(1, round(exc.retry_after or 1)))
        return APIError(
            429, message, type="rate_limit_error", code="upstream_rate_limited",
            headers={"Retry-After": retry},
        )  # fmt: skip
    if isinstance(exc, RequestTimeout):
        return APIError(504, message, type="server_error", code="upstream_timeout")
    if isinstance(exc, AuthenticationError | HostedError):
        # the server's own upstream failed: the client's request was fine
        return APIError(502, message, type="server_error", code="upstream_error")
    if isinstance(exc, ModelError | BackendError):
        return APIError(500, message, type="server_error", code="model_unavailable")
    return APIError(500, message, type="server_error", code="generation_failed")


#: What to do about a field that failed validation, beyond pydantic's own words.
_FIXES = {
    "n": "slmkit serve returns one choice per request: send n=1 or leave it out",
    "logprobs": "log probabilities are not supported: leave logprobs out",
    "top_logprobs": "log probabilities are not supported: leave top_logprobs out",
    "frequency_penalty": "not supported; use repetition_penalty (an extension) or send 0",
    "presence_penalty": "not supported; use repetition_penalty (an extension) or send 0",
    "logit_bias": "logit_bias is not supported: leave it out",
    "echo": "echo is not supported: leave it out",
    "suffix": "suffix (insertion) is not supported: leave it out",
    "best_of": "best_of is not supported: leave it out or send 1",
    "messages": "send at least one {'role': 'user', 'content': '...'}",
    "temperature": "send a number between 0 (greedy) and 2",
    "top_p": "send a number in (0, 1]",
    "max_tokens": "send an integer >= 1",
    "max_completion_tokens": "send an integer >= 1",
}


def _param_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "list[TextPart]", "list[str]", "literal['text']"):
            continue  # pydantic's name for a union member, not a field
        else:
            path += f".{part}" if path else str(part)
    return path


def from_validation(exc: ValidationError) -> APIError:
    """The first problem pydantic found, as a 400 naming the field and the fix."""
    error = exc.errors(include_url=False)[0]
    param = _param_path(tuple(error["loc"])) or None
    if error["type"] == "extra_forbidden":
        return invalid(f"unrecognized request argument: {param}", param, "unknown_parameter")
    if error["type"] == "missing":
        return invalid(f"missing required argument: {param}", param, "missing_required_parameter")
    fix = _FIXES.get(param or "")
    message = f"invalid {param}: {error['msg']}" + (f"; {fix}" if fix else "")
    return invalid(message, param, "invalid_value")
