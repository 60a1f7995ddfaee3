"""A 6-turn conversation with a ~600-token system prompt, with and without prefix reuse.

Prints, per turn, TTFT and decode tok/s on the same backend in one run (the two LLMs
alternate turn by turn so machine noise hits both alike), and the ratio of turns 2-6:
TTFT with reuse / without (target <= 0.3) and decode (target within +-3%), and how many
turns answered the same text with and without reuse (greedy).

Decode is compared within +-3%, which single turns cannot resolve on a 2-core VM: two
identical fresh engines differ by up to 10% turn by turn. So the turns ask for long
answers (each decodes up to ``--tokens``), the conversation runs ``--repeats`` times with
the two LLMs' order swapped each time (the second of two engines measured slower in one
A/B), and the decode ratio is tokens over decode time pooled over all turns 2-6. The
first version of this script took medians of 7-18-token answers: llama.cpp's own eval
timer then read 0.99 where those medians read 0.95.

    python benchmarks/conversation_prefix.py [--backend llamacpp] [--tokens 96] [--repeats 2]

"Without" is ``prefix_reuse=False`` (the default on every backend but openvino, where it
turns OpenVINO's prefix caching off). On openvino ``cached`` is slmkit's estimate.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass

import slmkit

RULES = " ".join(
    f"Rule {i}: when the user asks about topic {i}, answer politely, cite the rule number, "
    f"and keep the answer under twenty words."
    for i in range(1, 25)
)
SYSTEM = "You are the help desk of a library. Follow these rules. " + RULES
TURNS = [
    "What are your opening hours? Give them day by day, Monday to Sunday.",
    "Can I borrow three books at once? Explain the steps one by one.",
    "How long can I keep them? List every case you know.",
    "What happens if I return one late? Describe each step.",
    "Can I renew online? Walk me through it step by step.",
    "Thank you. Summarize everything we discussed as a numbered list.",
]


@dataclass(frozen=True)
class Turn:
    """One turn's timings: TTFT, tokens decoded after the first and the time they took."""

    ttft_s: float
    tokens: int
    decode_s: float
    cached: int

    @classmethod
    def of(cls, result: slmkit.Completion) -> Turn:
        t, usage = result.timings, result.usage
        return cls(t.ttft_s, usage.completion_tokens, t.total_s - t.ttft_s, usage.cached_tokens)

    @property
    def rate(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s else 0.0

    @staticmethod
    def pooled_rate(turns: list[Turn]) -> float:
        """Decode tok/s over several turns: all their tokens after the first / all their time."""
        return sum(t.tokens - 1 for t in turns) / sum(t.decode_s for t in turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model = "qwen2.5-coder-0.5b-instruct"
    llms = {
        "fresh": slmkit.load(model, backend=args.backend, prefix_reuse=False),
        "reuse": slmkit.load(model, backend=args.backend, prefix_reuse=True),
    }
    print(f"system prompt: {llms['fresh'].count_tokens(SYSTEM)} tokens")
    rows: dict[str, list[Turn]] = {"fresh": [], "reuse": []}
    same = 0
    for repeat in range(args.repeats):
        order = ["fresh", "reuse"] if repeat % 2 == 0 else ["reuse", "fresh"]
        convs = {name: llms[name].conversation(system=SYSTEM) for name in order}
        print(f"repeat {repeat + 1}, {' first, then '.join(order)}")
        print("turn | fresh TTFT ms | reuse TTFT ms | cached | tokens | fresh tok/s | reuse tok/s")
        for i, turn in enumerate(TURNS, 1):
            results = {
                name: conv.chat(turn, max_tokens=args.tokens) for name, conv in convs.items()
            }
            f, r = Turn.of(results["fresh"]), Turn.of(results["reuse"])
            same += results["fresh"].text == results["reuse"].text
            print(
                f"{i} | {f.ttft_s * 1e3:.0f} | {r.ttft_s * 1e3:.0f} | {r.cached} | "
                f"{f.tokens}/{r.tokens} | {f.rate:.1f} | {r.rate:.1f}"
            )
            if i > 1:
                rows["fresh"].append(f)
                rows["reuse"].append(r)
    ttft = statistics.median(r.ttft_s for r in rows["reuse"]) / statistics.median(
        f.ttft_s for f in rows["fresh"]
    )
    decode = Turn.pooled_rate(rows["reuse"]) / Turn.pooled_rate(rows["fresh"])
    print(f"turns 2-6: TTFT reuse/fresh = {ttft:.2f} (target <= 0.3); decode = {decode:.3f}")
    print(f"same answer with and without reuse: {same}/{len(TURNS) * args.repeats} turns")


if __name__ == "__main__":
    main()
