"""Chat with the default model, then stream an answer.

pip install "slmkit[llamacpp,default-model]"
python examples/quickstart.py
"""

import slmkit

with slmkit.load() as llm:  # default model; backend from config, else "auto"
    print(f"{llm.info.model} on {llm.info.backend} ({llm.info.reason})")
    reply = llm.chat("What is the capital of France? Answer in one word.")
    print(
        reply.text,
        f"[{reply.usage.completion_tokens} tokens, {reply.timings.ttft_s:.2f}s to first]",
    )

    messages = [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Give me three tips for naming variables."},
    ]
    for chunk in llm.stream(messages, max_tokens=80):
        print(chunk.text, end="", flush=True)
    print()
