"""The CLI: one line per error, never a traceback, never wrapped; chat survives a full context."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import slmkit._api
from slmkit.cli import app

from .conftest import make_llm
from .scripted_engine import ScriptedEngine

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_a_long_error_is_printed_on_one_line() -> None:
    result = runner.invoke(app, ["chat", "hi", "--backend", "nosuchbackend" * 8])
    assert result.exit_code == 1
    assert "UnknownBackend" in _one_error_line(result.output)


def test_a_malformed_config_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slmkit.toml").write_text("[backends]\nonnx = 3\n")
    result = runner.invoke(app, ["chat", "hi"])
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "ConfigError" in line and "backends.onnx" in line


def test_convert_out_an_existing_file_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "tiny.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 60)
    out = tmp_path / "a-file"
    out.write_text("x")
    result = runner.invoke(app, ["convert", str(source), "--to", "hf", "--out", str(out)])
    assert result.exit_code == 1
    assert "is a file" in _one_error_line(result.output)


def test_a_broken_chat_template_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ScriptedEngine(chat_template="{% for m in messages %}{{ 1 / 0 }}{% endfor %}")
    monkeypatch.setattr(slmkit._api, "load", lambda *a, **k: make_llm(engine))
    result = runner.invoke(app, ["chat", "hi"])
    assert result.exit_code == 1
    assert "ChatTemplateError" in _one_error_line(result.output)


def test_an_unexpected_exception_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("something\nunexpected")

    monkeypatch.setattr(slmkit._api, "load", broken)
    monkeypatch.delenv("SLMKIT_DEBUG", raising=False)
    result = runner.invoke(app, ["chat", "hi"])
    assert result.exit_code == 1
    assert "TypeError: something unexpected" in _one_error_line(result.output)


def test_interactive_chat_drops_the_oldest_turns_when_the_context_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = ScriptedEngine("ok", context_length=400)
    llm = make_llm(engine, max_tokens=8)
    monkeypatch.setattr(slmkit._api, "load", lambda *a, **k: llm)
    questions = [f"question {i}: " + "x" * 90 for i in range(6)]
    result = runner.invoke(app, ["chat", "--system", "S"], input="\n".join(questions) + "\n\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("ok") == 6
    assert "dropped the oldest" in result.output
    last = engine.decode(engine.prompts[-1])
    assert last.startswith("<system>S</system>") and "question 5" in last
    assert "question 0" not in last


def test_interactive_chat_goes_on_after_a_message_that_cannot_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = ScriptedEngine("ok", context_length=100)
    monkeypatch.setattr(slmkit._api, "load", lambda *a, **k: make_llm(engine, max_tokens=8))
    result = runner.invoke(app, ["chat"], input="x" * 500 + "\nhello\n\n")
    assert result.exit_code == 0, result.output
    assert "ContextLengthExceeded" in result.output
    assert engine.decode(engine.prompts[-1]) == "<user>hello</user><assistant>"
