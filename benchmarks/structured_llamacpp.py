"""Constrained against unconstrained decode speed on llama.cpp, and the mask's cost.

Loads the default model, answers the same prompt with and without a JSON schema (an
array of short strings, so both runs decode the full ``--tokens``), alternating rounds,
and prints decode tok/s for each, their ratio, the mask time per token and the
first-request cost of building llguidance's tokenizer.

    python benchmarks/structured_llamacpp.py [--tokens 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics

import slmkit

PROMPT = "List as many fruit names as you can."
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "fruits",
        "schema": {"type": "array", "items": {"type": "string"}, "minItems": 200},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with slmkit.load("qwen2.5-coder-0.5b-instruct", backend="llamacpp") as llm:
        llm.chat(PROMPT, response_format=SCHEMA, max_tokens=4)  # builds the tokenizer
        build_s = llm._engine.grammar_tokenizer_build_s  # type: ignore[attr-defined]
        free, constrained, mask_us = [], [], []
        for _ in range(args.rounds):
            plain = llm.chat(PROMPT, max_tokens=args.tokens, stop=None)
            free.append(plain.timings.decode_tokens_per_s)
            masked = llm.chat(PROMPT, response_format=SCHEMA, max_tokens=args.tokens)
            constrained.append(masked.timings.decode_tokens_per_s)
            mask_us.append(masked.runtime["mask_us_per_token"])
    free_rate, masked_rate = statistics.median(free), statistics.median(constrained)
    print(f"unconstrained decode  {free_rate:8.1f} tok/s  (median of {args.rounds})")
    print(f"constrained decode    {masked_rate:8.1f} tok/s")
    print(f"ratio                 {masked_rate / free_rate:8.3f}  (target >= 0.90)")
    print(f"mask per token        {statistics.median(mask_us):8.0f} us")
    print(f"tokenizer build       {build_s:8.2f} s  (first constrained request only)")


if __name__ == "__main__":
    main()
