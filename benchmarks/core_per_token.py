"""slmkit's own per-token cost: the core loop over an engine that costs nothing.

Runs the unit tests' scripted engine (tokens are bytes, no model) through ``llm.stream``
and through the engine's ``run()`` alone, in alternating rounds, and prints the core's
cost per token in microseconds. Compare it with a runtime's time per token (25 ms at
40 tok/s) to see what the core adds to decode speed.

    python benchmarks/core_per_token.py [--tokens 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from time import perf_counter

from slmkit.backends.base import Request
from slmkit.params import GenerationParams


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' scripted engine
    from tests.unit.conftest import make_llm
    from tests.unit.scripted_engine import ScriptedEngine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = ScriptedEngine("abcdefgh", endless=True)
    llm = make_llm(engine)
    params = GenerationParams(max_tokens=args.tokens)
    ids = engine.tokenize("Hi", add_special=True)
    core, bare = [], []
    for _ in range(args.rounds):
        start = perf_counter()
        for _ in llm.stream_generate("Hi", max_tokens=args.tokens):
            pass
        core.append((perf_counter() - start) / args.tokens)
        start = perf_counter()
        events = engine.run(Request(params, prompt_ids=ids))
        for count, _ in enumerate(events, 1):
            if count >= args.tokens:
                break
        events.close()
        bare.append((perf_counter() - start) / args.tokens)
    added = statistics.median(core) - statistics.median(bare)
    print(f"engine alone: {statistics.median(bare) * 1e6:.2f} us/token")
    print(f"through llm.stream_generate: {statistics.median(core) * 1e6:.2f} us/token")
    print(f"the core adds {added * 1e6:.2f} us/token = {added / 0.025:.4%} of a 25 ms token")


if __name__ == "__main__":
    main()
