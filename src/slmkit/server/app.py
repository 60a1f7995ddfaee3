"""create_app(): the ASGI application, its routes, authentication and error answers."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ContextLengthExceeded, SlmkitError
from ..types import Chunk
from . import schemas
from .admission import QueueFull, Ticket
from .errors import APIError, from_slmkit, from_validation, invalid
from .generation import ClientGone, Generation, Kind, raw_prompt_stream, until_disconnect
from .metrics import Metrics
from .pool import ModelPool, Models, ServedModel

if TYPE_CHECKING:
    from .._llm import LLM

__all__ = ["create_app"]

log = logging.getLogger("slmkit.server")

Body = TypeVar("Body", bound=BaseModel)
Opener = Callable[["LLM", dict[str, Any]], AsyncIterator[Chunk]]

#: Paths answered without a key: a load balancer's probe must not need the secret.
OPEN_PATHS = frozenset({"/health"})
#: The response header naming the replica that answered (when the app has a ``replica``).
REPLICA_HEADER = "x-slmkit-replica"


def create_app(
    models: Models,
    *,
    api_key: str | None = None,
    max_queue: int = 32,
    parallel: int = 1,
    cors_origins: Sequence[str] = (),
    backend: str | None = None,
    load_options: Mapping[str, Any] | None = None,
    replica: str | None = None,
) -> FastAPI:
    """An OpenAI-compatible ASGI app over ``models``.

    ``models``: an ``LLM``, a model name (loaded with ``slmkit.load(name, backend,
    **load_options)`` on first use; the first one also at startup), a list of those, or a
    mapping from the id clients send to one of those. The first model answers requests that
    name none. ``max_queue`` requests may wait per model while ``parallel`` run; more are
    refused with 503. With ``api_key`` every path but ``/health`` needs
    ``Authorization: Bearer KEY`` (or ``api-key: KEY``). ``replica`` names this process among
    several serving the same models (Ray Serve's replica id): every answer carries it in an
    ``x-slmkit-replica`` header and every metric in a ``replica`` label.
    """
    if max_queue < 0 or parallel < 1:
        raise ValueError("max_queue must be >= 0 and parallel >= 1")
    pool = ModelPool.build(
        models, backend=backend, load_options=load_options, slots=parallel, max_waiting=max_queue
    )
    metrics = Metrics(labels=(("replica", replica),) if replica else ())
    secret = api_key.encode() if api_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.default.start_loading()
        yield
        await asyncio.to_thread(pool.close)

    app = FastAPI(title="slmkit", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.pool = pool
    app.state.metrics = metrics
    app.state.requires_key = secret is not None

    app.add_middleware(Guard, secret=secret, metrics=metrics, replica=replica)
    if cors_origins:  # outermost, so preflights and error answers get CORS headers too
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "api-key"],
        )

    @app.exception_handler(Exception)
    async def unforeseen(request: Request, exc: Exception) -> Response:
        """The traceback goes to the server log (uvicorn prints it), never to the client."""
        return _error_response(APIError(500, "internal server error", type="server_error"))

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        return _error_response(exc, request.scope.get("state"))

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return _error_response(APIError(404, f"no route {request.url.path}", code="not_found"))

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc: Exception) -> Response:
        message = f"{request.method} is not allowed on {request.url.path}"
        return _error_response(APIError(405, message, code="method_not_allowed"))

    @app.get("/health")
    async def health() -> Response:
        model = pool.default
        model.start_loading()
        state = model.state
        body: dict[str, Any] = {"status": "ok" if state == "ready" else state}
        if model.error is not None:
            body["message"] = str(model.error)
        return JSONResponse(body, status_code=200 if state == "ready" else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        text = metrics.render(pool.gauges())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(m) for m in pool]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> dict[str, Any]:
        return _model_card(pool.get(model_id))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await _parse(request, schemas.ChatRequest)
        messages = [message.as_slmkit() for message in body.messages]

        def open_chat(llm: LLM, params: dict[str, Any]) -> AsyncIterator[Chunk]:
            return llm.astream(messages, **params)  # type: ignore[arg-type]

        return await _generate(request, "chat", body, open_chat)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await _parse(request, schemas.CompletionRequest)
        try:
            prompt = body.text()
        except ValueError as exc:
            raise invalid(str(exc), "prompt") from None

        def open_completion(llm: LLM, params: dict[str, Any]) -> AsyncIterator[Chunk]:
            return raw_prompt_stream(llm, prompt, params)

        return await _generate(request, "completion", body, open_completion)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = await _parse(request, schemas.EmbeddingRequest)
        served = pool.get(body.model)
        request.state.served_model = served.name
        ticket = _enter(served)
        try:
            llm = await until_disconnect(request, served.get())
            await until_disconnect(request, ticket.wait())
            result = await until_disconnect(request, llm.aembed(body.input))
        except ClientGone:
            return Response(status_code=499)
        except SlmkitError as exc:
            raise from_slmkit(exc) from None
        finally:
            ticket.release()
        if body.dimensions is not None and body.dimensions != result.dimensions:
            raise invalid(
                f"dimensions={body.dimensions} is not available: model {served.name!r} makes "
                f"{result.dimensions}-dimensional vectors; leave dimensions out",
                "dimensions",
                "invalid_value",
            )
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(result.vectors)
        ]
        usage = {"prompt_tokens": result.usage.prompt_tokens}
        usage["total_tokens"] = result.usage.prompt_tokens
        reply = {"object": "list", "data": data, "model": served.name, "usage": usage}
        return JSONResponse(reply)

    async def _generate(
        request: Request, kind: Kind, body: schemas.GenerationRequest, opener: Opener
    ) -> Response:
        started = perf_counter()
        served = pool.get(body.model)
        request.state.served_model = served.name
        ticket = _enter(served)
        try:
            llm = await until_disconnect(request, served.get())
            stream = await _open(opener, llm, body.params())
        except ClientGone:
            ticket.release()
            return Response(status_code=499)
        except SlmkitError as exc:
            ticket.release()
            error = from_slmkit(exc)
            if kind == "completion" and error.param == "messages":
                error.param = "prompt"
            raise error from None
        except BaseException:
            ticket.release()
            raise
        run = Generation(
            kind=kind,
            endpoint=_endpoint(request.url.path),
            model=served.name,
            ticket=ticket,
            stream=stream,
            metrics=metrics,
            started=started,
            include_usage=body.include_usage,
            request_id=schemas.new_id("chatcmpl" if kind == "chat" else "cmpl"),
        )
        if body.stream:
            response: Response = StreamingResponse(
                run.events(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
            return response
        try:
            answer = await until_disconnect(request, run.answer())
        except ClientGone:
            return Response(status_code=499)
        except SlmkitError as exc:
            raise from_slmkit(exc) from None
        return JSONResponse(answer)

    return app


async def _open(opener: Opener, llm: LLM, params: dict[str, Any]) -> AsyncIterator[Chunk]:
    """Validate and open the stream (in a thread: it renders and tokenizes the prompt).

    A request that sets no max_tokens gets the model's default, or what is left of the
    context when that is less; a prompt that leaves no room is refused, never truncated.
    """
    try:
        return await asyncio.to_thread(opener, llm, params)
    except ContextLengthExceeded as exc:
        room = exc.context_length - exc.prompt_tokens
        if "max_tokens" in params or room < 1:
            raise
    return await asyncio.to_thread(opener, llm, {**params, "max_tokens": room})


def _enter(served: ServedModel) -> Ticket:
    try:
        return served.admission.enter()
    except QueueFull as exc:
        raise APIError(
            503,
            f"the server is busy: {served.admission.waiting} requests are waiting for model "
            f"{served.name!r}; retry after {exc.retry_after_s} s",
            type="server_error",
            code="queue_full",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


async def _parse(request: Request, model: type[Body]) -> Body:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(
            f"the body is not valid JSON ({exc}); send a JSON object",
            None,
            "invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object", None, "invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _key_problem(headers: Headers, secret: bytes) -> APIError | None:
    """Constant-time comparison; the key is never echoed, logged or put in the error."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else headers.get("api-key", "")
    if not given:
        return APIError(
            401, "missing API key: send Authorization: Bearer <key>", code="missing_api_key"
        )
    if not hmac.compare_digest(given.encode(), secret):
        return APIError(401, "incorrect API key", code="invalid_api_key")
    return None


class Guard:
    """ASGI middleware: the API key check, then request and error counting (and the replica
    header on every answer).

    Plain ASGI rather than ``@app.middleware``: that wrapper would sit between a streamed
    answer and the client and hide the client's disconnect from it.
    """

    def __init__(
        self, app: ASGIApp, secret: bytes | None, metrics: Metrics, replica: str | None = None
    ) -> None:
        self.app, self.secret, self.metrics = app, secret, metrics
        self.tag = [(REPLICA_HEADER.encode(), replica.encode())] if replica else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _endpoint(scope["path"])
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.tag:
                    message = {**message, "headers": [*message.get("headers", []), *self.tag]}
            await send(message)

        try:
            problem = None
            guarded = endpoint not in OPEN_PATHS and scope["method"] != "OPTIONS"
            if self.secret is not None and guarded:
                problem = _key_problem(Headers(scope=scope), self.secret)
            if problem is not None:
                await _error_response(problem, state)(scope, receive, watch)
            else:
                await self.app(scope, receive, watch)
        finally:
            if status >= 400 and status != 499:
                code = state.get("error_code") or str(status)
                self.metrics.count("slmkit_errors_total", endpoint=endpoint, code=code)
            self.metrics.count(
                "slmkit_requests_total",
                endpoint=endpoint,
                model=state.get("served_model", ""),
                status=str(status),
            )


def _error_response(exc: APIError, state: dict[str, Any] | None = None) -> Response:
    if state is not None:
        state["error_code"] = exc.code
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _endpoint(path: str) -> str:
    """The route a path belongs to, for metric labels (never a free-form path)."""
    if path.startswith("/v1/models"):
        return "/v1/models"
    known = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/health", "/metrics")
    return path if path in known else "other"


def _model_card(model: ServedModel) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": model.created, "owned_by": "slmkit"}


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
