"""Constrained against unconstrained decode speed on a token backend, and the mask's cost.

Loads the default model on ``--backend`` (llamacpp, transformers, onnx, mlx mask through
a logits hook; openvino applies the grammar natively), answers the same prompt with and
without a JSON schema (an array of short strings, so both runs decode the full
``--tokens``), alternating rounds, and prints decode tok/s for each, their ratio, the mask
time per token (masking engines) and the first constrained request's extra cost
(llguidance's tokenizer build, or OpenVINO's grammar set-up).

    python benchmarks/structured_decode.py [--backend llamacpp] [--tokens 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import slmkit

PROMPT = "List one hundred fruit names, one per line."
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
    parser.add_argument("--backend", default="llamacpp")
    args = parser.parse_args()
    with slmkit.load("qwen2.5-coder-0.5b-instruct", backend=args.backend) as llm:
        began = time.perf_counter()
        llm.chat(PROMPT, response_format=SCHEMA, max_tokens=4)  # builds the grammar's tables
        first_s = time.perf_counter() - began
        began = time.perf_counter()
        llm.chat(PROMPT, response_format=SCHEMA, max_tokens=4)
        again_s = time.perf_counter() - began
        free, constrained, ratios, mask_us = [], [], [], []
        for _ in range(args.rounds):  # paired rounds: a busy machine's drift hits both
            plain = llm.chat(PROMPT, max_tokens=args.tokens)
            masked = llm.chat(PROMPT, response_format=SCHEMA, max_tokens=args.tokens)
            free.append(plain.timings.decode_tokens_per_s)
            constrained.append(masked.timings.decode_tokens_per_s)
            ratios.append(constrained[-1] / free[-1])
            mask_us.append(masked.runtime.get("mask_us_per_token", float("nan")))
            print(
                f"  round: {plain.usage.completion_tokens} free tokens at {free[-1]:.1f} tok/s, "
                f"{masked.usage.completion_tokens} constrained at {constrained[-1]:.1f} tok/s"
            )
    print(f"{args.backend}")
    print(f"unconstrained decode  {statistics.median(free):8.1f} tok/s  (median of {args.rounds})")
    print(f"constrained decode    {statistics.median(constrained):8.1f} tok/s")
    print(f"ratio                 {statistics.median(ratios):8.3f}  (paired median; goal 0.90)")
    print(f"mask per token        {statistics.median(mask_us):8.0f} us  (nan: applied natively)")
    print(f"first request         {first_s:8.2f} s  (the same request again: {again_s:.2f} s)")


if __name__ == "__main__":
    main()
