"""The ``slmkit`` command. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from .errors import SlmkitError

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


def friendly_errors(func: F) -> F:
    """Turn SlmkitError (and Ctrl-C) into one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SlmkitError as exc:
            err.print(
                f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False, markup=True
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


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
) -> None:
    """Chat with a model; the answer streams as it is generated."""
    from ._api import load
    from ._messages import as_messages

    llm = load(model, backend)
    params = _params(max_tokens, temperature)
    history: list[Any] = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        messages = history + as_messages(prompt)
        if as_json:
            result = llm.chat(messages, **params)
            out.print_json(json.dumps(asdict(result)))
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
        history += as_messages(line)
        answer = _print_stream(llm.stream(history, **params))
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
        out.print_json(json.dumps(asdict(llm.generate(prompt, **params))))
    else:
        _print_stream(llm.stream(prompt, **params))


@app.command()
@friendly_errors
def backends(as_json: JsonOpt = False) -> None:
    """List backends: installed? usable here? why not? which extra installs it?"""
    from .registry import backend_statuses

    rows = backend_statuses()
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table("backend", "kind", "installed", "usable", "extra", "notes")
    for r in rows:
        table.add_row(
            r.name,
            r.kind,
            "yes" if r.installed else "no",
            "[green]yes[/]" if r.usable else "[red]no[/]",
            f"slmkit[{r.extra}]",
            r.reason or r.description,
        )
    out.print(table)


@app.command()
@friendly_errors
def models(as_json: JsonOpt = False) -> None:
    """List catalog aliases, where each model comes from, and which services host it."""
    from .catalog import all_models

    specs = all_models()
    if as_json:
        out.print_json(json.dumps([_spec_json(s) for s in specs]))
        return
    table = Table("alias", "model", "chat", "offline package", "formats", "hosted on")
    for s in specs:
        table.add_row(
            s.alias,
            s.title,
            "yes" if s.is_chat else "base",
            s.packaged.install if s.packaged else "",
            ", ".join(sorted(s.hub)),
            ", ".join(sorted(s.hosted)),
        )
    out.print(table)


@app.command()
@friendly_errors
def convert(
    model: Annotated[str, typer.Argument(help="Catalog alias, .gguf file or checkpoint folder.")],
    to: Annotated[str, typer.Option("--to", help="Target format: hf, onnx, openvino, mlx.")],
    out_dir: Annotated[
        str | None, typer.Option("--out", help="Write here instead of the slmkit cache.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    precision: Annotated[
        str | None, typer.Option("--precision", help="e.g. fp32, fp16, bf16, int4 (per target).")
    ] = None,
    execution_provider: Annotated[
        str | None, typer.Option("--execution-provider", help="ONNX: cpu, cuda, dml, ...")
    ] = None,
    weight_format: Annotated[
        str | None, typer.Option("--weight-format", help="OpenVINO: int4, int8, fp16, ...")
    ] = None,
    bits: Annotated[int | None, typer.Option("--bits", help="Quantization bits (MLX).")] = None,
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


def _spec_json(spec: Any) -> dict[str, Any]:
    data = asdict(spec)
    data.pop("chat_template", None)
    return data


def main() -> None:
    app()
