from __future__ import annotations

import json

from typer.testing import CliRunner

from slmkit.cli import app

runner = CliRunner()


def test_backends_json_lists_builtins_with_their_extra() -> None:
    result = runner.invoke(app, ["backends", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["llamacpp"]["extra"] == "llamacpp"


def test_models_json_lists_the_default_model() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    aliases = [m["alias"] for m in json.loads(result.output)]
    assert "qwen2.5-coder-0.5b-instruct" in aliases and "gemma-3-270m" in aliases


def test_models_table_renders() -> None:
    result = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "gemma-3-270m" in result.output


def test_errors_are_one_line_and_exit_non_zero() -> None:
    result = runner.invoke(app, ["chat", "hi", "--backend", "nosuchbackend"])
    assert result.exit_code == 1
    assert "UnknownBackend" in result.output and "Traceback" not in result.output


def test_missing_model_path_is_a_clean_error(tmp_path) -> None:
    result = runner.invoke(
        app, ["generate", "hi", "--model", str(tmp_path / "x.gguf"), "--backend", "llamacpp"]
    )
    assert result.exit_code == 1
    assert "ModelNotFound" in result.output and "Traceback" not in result.output


def test_backends_table_shows_the_extra_to_install() -> None:
    result = runner.invoke(app, ["backends"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "slmkit[llamacpp]" in result.output


def test_models_table_shows_the_install_command_literally() -> None:
    result = runner.invoke(app, ["models"], env={"COLUMNS": "300"})
    assert "slmkit[default-model]" in result.output


def test_an_unreadable_json_schema_file_is_a_clean_error(tmp_path) -> None:
    bad = tmp_path / "schema.json"
    bad.write_text("{not json")
    result = runner.invoke(app, ["chat", "hi", "--json-schema", str(bad)])
    assert result.exit_code != 0
    assert "--json-schema" in result.output and "Traceback" not in result.output


def test_probe_table_shows_each_ranking_reason_literally() -> None:
    ranking = json.loads(runner.invoke(app, ["probe", "--json"]).output)["ranking"]
    table = runner.invoke(app, ["probe"], env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    for row in ranking:  # 'needs mlx-lm: pip install "slmkit[mlx]"' kept its [mlx]
        assert row["reason"] in table.output
