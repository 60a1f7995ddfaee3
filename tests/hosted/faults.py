"""A small OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on request.

Tests queue faults (``server.queue(...)``); each request takes the next one, and once
the queue is empty the server answers properly: an SSE chat stream "Hello world" with a
finish reason and a usage chunk. Every request is recorded for assertions.

Given an embedding model (``FaultServer(embedder=llm)``), it also serves
``/v1/embeddings`` with that real model's vectors in OpenAI's wire format: it stands
in for ``slmkit serve`` until that route exists (llama-cpp-python's server would need
a BERT GGUF, which nothing here can make honestly).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = ("Hello", " world", "!")
USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


@dataclass
class Fault:
    """One scripted answer.

    kind: status | slow | cut | malformed | stall | drip | comments | ending | answer |
    calls.
    """

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0
    after_chunks: int = 1
    finish: str = "stop"
    usage: bool = True
    text: str = ""
    calls: tuple[tuple[str, str], ...] = ()


def status(code: int, message: str = "", headers: dict[str, str] | None = None) -> Fault:
    body = json.dumps({"error": {"message": message or f"fault {code}", "code": str(code)}})
    return Fault("status", status=code, headers=headers or {}, body=body)


def slow(seconds: float) -> Fault:
    """Wait before sending anything (longer than the client's timeout)."""
    return Fault("slow", delay=seconds)


def cut(after_chunks: int = 1) -> Fault:
    """Send a few SSE events, then drop the connection in the middle of a chunk."""
    return Fault("cut", after_chunks=after_chunks)


def stall(after_chunks: int, seconds: float) -> Fault:
    """Send a few SSE events, then go silent for ``seconds``."""
    return Fault("stall", after_chunks=after_chunks, delay=seconds)


def malformed(after_chunks: int = 1) -> Fault:
    """Send a few SSE events, then an event whose JSON is broken."""
    return Fault("malformed", after_chunks=after_chunks)


def drip(seconds: float) -> Fault:
    """A healthy stream, one event every ``seconds``: each read is quick, the whole is slow."""
    return Fault("drip", delay=seconds)


def ending(finish: str = "stop", usage: bool = True) -> Fault:
    """A healthy stream that ends with another finish reason, or without a usage chunk."""
    return Fault("ending", finish=finish, usage=usage)


def answer(text: str) -> Fault:
    """A healthy stream whose answer is ``text`` (JSON that breaks a schema, say)."""
    return Fault("answer", text=text)


def tool_calls(*calls: tuple[str, str]) -> Fault:
    """A healthy stream that calls tools: (name, arguments as sent, JSON or not), each
    streamed as OpenAI does (id and name first, the arguments in pieces)."""
    return Fault("calls", calls=calls)


def with_comments() -> Fault:
    """A healthy stream with SSE comment lines (": ping") between the events."""
    return Fault("comments")


@dataclass
class Seen:
    """One request as received; header names lower-cased."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _call_deltas(calls: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    deltas = []
    for index, (name, arguments) in enumerate(calls):
        head = {"index": index, "id": f"call_fault_{index}", "type": "function"}
        deltas.append({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 4]}}]}
            for i in range(0, len(arguments), 4)
        ]
    return deltas


def _events(
    finish: str = "stop",
    with_usage: bool = True,
    pieces: Sequence[str] = ANSWER,
    calls: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": None if calls else ""})]
    events += [_chunk({"content": piece}) for piece in pieces]
    events += [_chunk(delta) for delta in _call_deltas(calls)]
    events.append(_chunk({}, finish="tool_calls" if calls else finish))
    if with_usage:
        usage = _chunk({})
        usage["choices"] = []
        usage["usage"] = USAGE
        events.append(usage)
    lines = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
    return [*lines, b"data: [DONE]\n\n"]


class FaultServer:
    """``with FaultServer() as server: ... server.url`` (ends with /v1)."""

    def __init__(self, embedder: Any = None) -> None:
        self._embedder = embedder
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        #: Streams the client hung up on before the end (cancelled or closed early).
        self.hung_up = threading.Event()
        self._stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with outer._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    outer.seen.append(Seen(self.path, headers, body))
                    fault = outer._faults.pop(0) if outer._faults else None
                outer._answer(self, fault)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def queue(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> int:
        return len(self.seen)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    # -- answers -----------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, fault: Fault | None) -> None:
        if fault is not None and fault.kind == "slow":
            self._stop.wait(fault.delay)
            fault = None
        if fault is not None and fault.kind == "status":
            _send_json(handler, fault.status, fault.body, fault.headers)
            return
        if self._embedder is not None and handler.path.split("?")[0].endswith("/embeddings"):
            _send_json(handler, *self._embeddings(self.seen[-1].body))
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        events = _events()
        if fault is not None and fault.kind == "ending":
            events, fault = _events(fault.finish, fault.usage), None
        if fault is not None and fault.kind == "answer":
            text = fault.text
            events, fault = _events(pieces=[text[i : i + 5] for i in range(0, len(text), 5)]), None
        if fault is not None and fault.kind == "calls":
            events, fault = _events(pieces=(), calls=fault.calls), None
        if fault is not None and fault.kind == "comments":
            events = [part for event in events for part in (b": ping - keepalive\n\n", event)]
            fault = None
        pause = 0.0
        if fault is not None and fault.kind == "drip":
            pause, fault = fault.delay, None
        if fault is not None:
            events = events[: fault.after_chunks + 1]
        try:
            for event in events:
                _write_chunk(handler, event)
                self._stop.wait(pause)
            if fault is None:
                handler.wfile.write(b"0\r\n\r\n")
            elif fault.kind == "cut":
                # a chunk header promising more bytes than ever arrive, then close
                handler.wfile.write(b'400\r\ndata: {"choi')
                handler.wfile.flush()
                handler.close_connection = True
            elif fault.kind == "malformed":
                _write_chunk(handler, b"data: {this is not json\n\n")
                _write_chunk(handler, b"data: [DONE]\n\n")
                handler.wfile.write(b"0\r\n\r\n")
            elif fault.kind == "stall":
                self._stop.wait(fault.delay)
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.hung_up.set()

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, str]:
        from slmkit.errors import InvalidRequest

        try:
            result = self._embedder.embed(body["input"])
        except InvalidRequest as exc:
            error = {"message": str(exc), "type": "invalid_request_error", "code": None}
            return 400, json.dumps({"error": error})
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(result.vectors)
        ]
        tokens = result.usage.prompt_tokens
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        answer = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        return 200, json.dumps(answer)


def _send_json(
    handler: BaseHTTPRequestHandler, code: int, body: str, headers: dict[str, str] | None = None
) -> None:
    data = body.encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()
    time.sleep(0.001)
