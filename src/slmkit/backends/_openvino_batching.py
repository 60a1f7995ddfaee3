"""Continuous batching on OpenVINO GenAI: one thread steps the pipeline for every request.

``ContinuousBatchingPipeline`` takes requests at any time (``add_request``) and advances
all of them together in each ``step()``: eight concurrent answers cost little more per step
than one, since a CPU's decode is bound by reading the weights once per step. The
:class:`StepLoop` thread steps while any request is unfinished and sleeps otherwise; each
request reads the tokens its handle gathered after every step, and closing a request's token
iterator cancels it in the pipeline at once (queued or running).

Paged attention is also where OpenVINO's prefix caching lives (its LLMPipeline runs on it
on CPU and GPU): :func:`scheduler_config` sets it, :func:`kv_block` gives its block size.
"""

from __future__ import annotations

import itertools
import platform
import sys
import threading
from collections.abc import Generator
from typing import Any

from ..errors import GenerationError, LLMClosed

__all__ = ["StepLoop", "kv_block", "scheduler_config"]

#: How long a reader waits for the next step before it looks at its handle again.
_WAKE_S = 0.5
#: Tokens per KV block of OpenVINO's paged attention (its KVCacheManager: CPU 32, GPU 16).
_KV_BLOCK = {"CPU": 32, "GPU": 16}


def kv_block(device: str) -> int | None:
    """Tokens per KV block of paged attention on ``device``; None where OpenVINO GenAI runs
    its stateful pipeline instead (NPU, AUTO and HETERO here; CPUs other than x86-64 and
    ARM64), which keeps no prefix."""
    if platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
        return None
    return _KV_BLOCK.get(device.split(".")[0])


def scheduler_config(openvino_genai: Any, prefix_caching: bool, cache_gb: int = 0) -> Any:
    """A SchedulerConfig: a KV cache of ``cache_gb`` for continuous batching, or with 0 the
    one LLMPipeline uses itself (cache grown on demand, no cap on a step's tokens)."""
    config = openvino_genai.SchedulerConfig()
    config.enable_prefix_caching = prefix_caching
    if cache_gb:
        config.cache_size = cache_gb
    else:
        config.max_num_batched_tokens = sys.maxsize
    return config


class StepLoop:
    """The stepping thread of one ContinuousBatchingPipeline, and its requests' readers."""

    def __init__(self, pipe: Any, running_status: Any) -> None:
        self._pipe = pipe
        self._running = running_status  # openvino_genai.GenerationStatus.RUNNING
        self._cond = threading.Condition()
        self._ids = itertools.count()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="slmkit-ov-steps", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._pipe.has_non_finished_requests():
                    self._cond.wait()
                if self._closed:
                    return
            try:
                self._pipe.step()
            except BaseException as exc:  # every reader raises it; the loop stops stepping
                with self._cond:
                    self._error = exc
                    self._closed = True
                    self._cond.notify_all()
                return
            with self._cond:
                self._cond.notify_all()

    def tokens(self, input_ids: Any, config: Any) -> Generator[int, None, None]:
        """The generated ids of one request; closing the generator cancels the request."""
        with self._cond:
            self._raise_if_stopped()
            handle = self._pipe.add_request(next(self._ids), input_ids, config)
            self._cond.notify_all()
        try:
            while True:
                if handle.can_read():
                    for output in handle.read().values():
                        yield from (int(t) for t in output.generated_ids)
                    continue
                if handle.get_status() != self._running:
                    return
                with self._cond:
                    self._raise_if_stopped()
                    if not handle.can_read() and handle.get_status() == self._running:
                        self._cond.wait(_WAKE_S)
        finally:
            if handle.get_status() == self._running:
                handle.cancel()

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            line = (str(self._error).strip().splitlines() or [type(self._error).__name__])[0]
            raise GenerationError(
                f"OpenVINO's batching step failed ({line}); load the model again, or without "
                "continuous_batching"
            ) from self._error
        if self._closed:
            raise LLMClosed("the OpenVINO pipeline was closed while this request ran")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
