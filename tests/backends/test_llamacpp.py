"""llama.cpp specifics beyond the contract suite, on the real default model."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip(
    "llama_cpp", reason="llama.cpp extra not installed: pip install 'slmkit[llamacpp]'"
)

import slmkit
from slmkit import errors


@pytest.fixture(scope="module")
def llm():
    with slmkit.load(backend="llamacpp") as llm:
        yield llm


def test_default_model_loads_with_its_own_chat_template(llm) -> None:
    assert llm.info.model == "qwen2.5-coder-0.5b-instruct"
    assert llm.info.is_chat and llm.info.context_length == 4096
    assert llm.info.artifact.endswith(".gguf")


def test_options_reach_llama_cpp() -> None:
    with slmkit.load("gemma-3-270m", backend="llamacpp", context_length=256, n_threads=1) as small:
        assert small.info.context_length == 256
        with pytest.raises(errors.ContextLengthExceeded):
            small.generate("hello " * 200, max_tokens=100)


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(errors.InvalidRequest, match="n_threads"):
        slmkit.load("gemma-3-270m", backend="llamacpp", n_thread=2)


def test_one_shot_helpers_cache_the_loaded_model() -> None:
    first = slmkit.generate("The sky is", model="gemma-3-270m", backend="llamacpp", max_tokens=2)
    from slmkit._api import _cache

    cached = len(_cache)
    second = slmkit.generate("The sky is", model="gemma-3-270m", backend="llamacpp", max_tokens=2)
    assert len(_cache) == cached and first.text == second.text
    slmkit.close_all()


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``slmkit ARGS`` in a fresh interpreter, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "slmkit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_chat_answers_from_the_default_model() -> None:
    out = run_cli(
        "chat", "What is the capital of France? Answer in one word.", "--backend", "llamacpp"
    )
    assert out.returncode == 0, out.stderr
    assert "paris" in out.stdout.lower()


def test_cli_interactive_session_keeps_the_conversation() -> None:
    out = run_cli(
        "chat",
        "--backend",
        "llamacpp",
        "--max-tokens",
        "24",
        stdin="My name is Ada. Reply with OK.\nWhat is my name? Answer in one word.\n\n",
    )
    assert out.returncode == 0, out.stderr
    replies = out.stdout.lower().split("> ")  # the prompt before each reply
    assert "ada" in replies[2]


def test_cli_json_output_is_a_completion() -> None:
    import json

    out = run_cli(
        "generate",
        "The sky is",
        "--model",
        "gemma-3-270m",
        "--backend",
        "llamacpp",
        "--max-tokens",
        "3",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["usage"]["completion_tokens"] == 3 and data["finish_reason"] == "length"


# -- the repacking trial (docs/backends/llamacpp.md) -----------------------------------


@pytest.fixture
def fresh_trials(tmp_path, monkeypatch):
    """A cache with no trial verdicts that still finds the assembled models."""
    from slmkit.paths import cache_dir

    models = cache_dir("models")
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    if models.is_dir():
        (tmp_path / "models").symlink_to(models, target_is_directory=True)
    return tmp_path


def test_the_repacking_trial_keeps_the_fastest_safe_setting_and_is_reused(fresh_trials) -> None:
    from slmkit import trial

    with slmkit.load("gemma-3-270m", backend="llamacpp", context_length=256) as first:
        chosen = first.info.extra["llamacpp"]
        assert first.generate("The sky is", max_tokens=3).usage.completion_tokens == 3
    (decision,) = trial.stored_decisions()
    assert decision.key["versions"]["llama-cpp-python"] and "Q4_K" in str(decision.key["context"])
    # Repacking on where its trial passed (here: yes); off only after it crashed.
    *faulted, passed = decision.verdicts
    assert passed.safe and chosen["extra_buffers"] is passed.config["extra_buffers"]
    assert all(v.outcome == "crashed" and v.signal in chosen["extra_buffers_why"] for v in faulted)
    assert chosen["extra_buffers"] is (not faulted)
    assert "just now" in chosen["extra_buffers_why"]
    with slmkit.load("gemma-3-270m", backend="llamacpp", context_length=256) as second:
        assert "cached from" in second.info.extra["llamacpp"]["extra_buffers_why"]


@pytest.mark.parametrize("extra_buffers", [False, True])
def test_extra_buffers_option_reaches_llama_cpp(fresh_trials, capfd, extra_buffers) -> None:
    from slmkit import trial

    with slmkit.load(
        "gemma-3-270m",
        backend="llamacpp",
        context_length=256,
        extra_buffers=extra_buffers,
        verbose=True,
    ) as llm:
        assert llm._engine._llama.model_params.use_extra_bufts is extra_buffers
        assert "no trial" in llm.info.extra["llamacpp"]["extra_buffers_why"]
    log = capfd.readouterr().err
    assert trial.stored_decisions() == []  # a forced setting runs no trial
    if not extra_buffers:
        assert "CPU_REPACK" not in log and "AMX" not in log.split("CPU :")[0]
    elif "REPACK = 1" in log:  # this build repacks on this CPU: llama.cpp said it did
        assert "CPU_REPACK model buffer size" in log or "AMX model buffer size" in log


def test_probe_and_backends_say_what_the_trial_chose(fresh_trials) -> None:
    with slmkit.load("gemma-3-270m", backend="llamacpp", context_length=256):
        pass
    probe = run_cli("probe", "--json")
    assert probe.returncode == 0, probe.stderr
    import json

    (entry,) = json.loads(probe.stdout)["trials"]
    assert entry["backend"] == "llamacpp" and "extra_buffers" in entry["chosen"]
    listing = run_cli("backends", "--json")
    (row,) = [r for r in json.loads(listing.stdout) if r["name"] == "llamacpp"]
    assert row["trials"] == [f"trial: {entry['reason']}"]
    forgot = run_cli("probe", "--retrial", "--json")
    assert "forgot 1" in forgot.stderr and json.loads(forgot.stdout)["trials"] == []


@pytest.mark.timeout(600)
def test_cli_interactive_session_outlives_a_full_context(tmp_path) -> None:
    """Past the context the oldest exchanges go (and the CLI says so); the session goes on."""
    (tmp_path / "slmkit.toml").write_text("[backends.llamacpp]\ncontext_length = 160\n")
    questions = [f"Fact {i}: " + "the sky is blue and the grass is green. " * 4 for i in range(4)]
    out = subprocess.run(
        [sys.executable, "-m", "slmkit", "chat", "--backend", "llamacpp", "--max-tokens", "16"],
        input="\n".join(questions) + "\nSay OK.\n\n",
        capture_output=True,
        text=True,
        timeout=500,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.returncode == 0, out.stderr
    assert "dropped the oldest" in out.stderr
    assert out.stdout.count("> ") >= 5  # every question got its turn


def test_a_small_context_length_is_the_limit_that_is_enforced() -> None:
    """llama.cpp pads n_ctx to 256; past the 160 asked for, llama-cpp-python's buffer overflowed."""
    with slmkit.load("gemma-3-270m", backend="llamacpp", context_length=160) as llm:
        assert llm.info.context_length == 160
        prompt = "the sky is blue and the grass is green. " * 14  # ~140 tokens
        with pytest.raises(errors.ContextLengthExceeded):
            llm.generate(prompt, max_tokens=40)
        assert llm.generate(prompt, max_tokens=8).usage.completion_tokens == 8


def test_a_saved_prefix_holds_the_sequence_not_the_logits_rows() -> None:
    """llama-cpp-python's save_state() copies up to n_batch rows of logits (311 MB for this
    model at n_batch 512); a saved prefix keeps llama.cpp's own state (the KV cache), and a
    conversation taking turns with another still finds it."""
    system = "You are terse. " + "Answer in one word. " * 40
    with slmkit.load(backend="llamacpp", prefix_reuse=True, prefix_cache_entries=2) as llm:
        a, b = llm.conversation(system=system), llm.conversation(system=system + "Be kind.")
        a.chat("Capital of France?", max_tokens=4)
        b.chat("Capital of Italy?", max_tokens=4)
        again = a.chat("And of Spain?", max_tokens=4)
        states = list(llm._engine._prefix._states.values())
    assert again.usage.cached_tokens > again.usage.prompt_tokens // 2
    assert len(states) == 2 and all(len(state.data) < 64 * 2**20 for state in states)
