"""A 6-turn conversation with a ~600-token system prompt, with and without prefix reuse.

Prints, per turn, TTFT and decode tok/s on the same backend in one run (the two LLMs
alternate turn by turn so machine noise hits both alike), and the ratio of turns 2-6:
TTFT with reuse / without (target <= 0.3) and decode (target within +-3%), and how many
turns answered the same text with and without reuse (greedy).

    python benchmarks/conversation_prefix.py [--backend llamacpp] [--tokens 32]

"Without" is ``prefix_reuse=False`` (the default on every backend but openvino, where it
turns OpenVINO's prefix caching off). On openvino ``cached`` is slmkit's estimate.
"""

from __future__ import annotations

import argparse
import statistics

import slmkit

RULES = " ".join(
    f"Rule {i}: when the user asks about topic {i}, answer politely, cite the rule number, "
    f"and keep the answer under twenty words."
    for i in range(1, 25)
)
SYSTEM = "You are the help desk of a library. Follow these rules. " + RULES
TURNS = [
    "What are your opening hours?",
    "Can I borrow three books at once?",
    "How long can I keep them?",
    "What happens if I return one late?",
    "Can I renew online?",
    "Thank you, goodbye.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    model = "qwen2.5-coder-0.5b-instruct"
    fresh = slmkit.load(model, backend=args.backend, prefix_reuse=False)
    reuse = slmkit.load(model, backend=args.backend, prefix_reuse=True)
    print(f"system prompt: {fresh.count_tokens(SYSTEM)} tokens")
    convs = {"fresh": fresh.conversation(system=SYSTEM), "reuse": reuse.conversation(system=SYSTEM)}
    rows: dict[str, list[tuple[float, float, int]]] = {"fresh": [], "reuse": []}
    texts: dict[str, list[str]] = {"fresh": [], "reuse": []}
    for turn in TURNS:
        for name, conv in convs.items():
            result = conv.chat(turn, max_tokens=args.tokens)
            texts[name].append(result.text)
            rows[name].append(
                (
                    result.timings.ttft_s,
                    result.timings.decode_tokens_per_s,
                    result.usage.cached_tokens,
                )
            )
    print("turn | fresh TTFT ms | reuse TTFT ms | cached | fresh tok/s | reuse tok/s")
    for i, (f, r) in enumerate(zip(rows["fresh"], rows["reuse"], strict=True), 1):
        print(f"{i} | {f[0] * 1e3:.0f} | {r[0] * 1e3:.0f} | {r[2]} | {f[1]:.1f} | {r[1]:.1f}")
    ttft = statistics.median(r[0] for r in rows["reuse"][1:]) / statistics.median(
        f[0] for f in rows["fresh"][1:]
    )
    decode = statistics.median(r[1] for r in rows["reuse"][1:]) / statistics.median(
        f[1] for f in rows["fresh"][1:]
    )
    print(f"turns 2-6: TTFT reuse/fresh = {ttft:.2f} (target <= 0.3); decode = {decode:.3f}")
    same = sum(f == r for f, r in zip(texts["fresh"], texts["reuse"], strict=True))
    print(f"same answer with and without reuse: {same}/{len(TURNS)} turns")
    for i, (f, r) in enumerate(zip(texts["fresh"], texts["reuse"], strict=True), 1):
        if f != r:
            print(f"turn {i}: fresh {f!r}\n        reuse {r!r}")


if __name__ == "__main__":
    main()
