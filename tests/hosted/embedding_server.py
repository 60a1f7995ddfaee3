"""A real OpenAI-compatible ``/v1/embeddings`` endpoint on 127.0.0.1, over a real model.

Stands in for ``slmkit serve`` until that route exists (llama-cpp-python's server
would need a BERT GGUF, which nothing here can make honestly). It answers with the
vectors of a loaded slmkit embedding model in OpenAI's wire format, errors in
OpenAI's error schema, and can be told to fail the next requests with a status.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slmkit._llm import LLM
from slmkit.errors import InvalidRequest


class EmbeddingServer:
    """``with EmbeddingServer(llm) as server: ... server.url`` (ends with /v1)."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.requests: list[dict[str, Any]] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with outer._lock:
                    outer.requests.append(body)
                    failure = outer._failures.pop(0) if outer._failures else None
                if not self.path.split("?")[0].endswith("/embeddings"):
                    return outer._send(self, 404, _error("only /v1/embeddings is served"))
                if failure is not None:
                    return outer._send(self, failure[0], _error("scripted failure"), failure[1])
                return outer._send(self, *outer._embed(body))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures.append((status, headers or {}))

    def _embed(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            result = self.llm.embed(body["input"])
        except InvalidRequest as exc:
            return 400, _error(str(exc))
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(result.vectors)
        ]
        usage = {"prompt_tokens": result.usage.prompt_tokens, "total_tokens": result.usage.prompt_tokens}
        return 200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> EmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}
