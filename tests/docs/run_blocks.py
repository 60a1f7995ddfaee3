"""Run one page's python blocks in order in one namespace, as a reader would.

Usage: ``python tests/docs/run_blocks.py BLOCKS.json`` where the file holds
``[{"where": "docs/x.md:12", "code": "..."}]``. Top-level ``await`` works (one event loop
for the page). Exits 1 naming the block that failed, with its traceback.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import sys
import traceback
from pathlib import Path


def main(path: str) -> int:
    blocks = json.loads(Path(path).read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": "__main__"}
    loop = asyncio.new_event_loop()
    for block in blocks:
        print(f"--- {block['where']}", flush=True)
        try:
            code = compile(
                block["code"], block["where"], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            result = eval(code, namespace)  # exec that may return a coroutine (top-level await)
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
        except BaseException:
            print(f"\nFAILED: the block at {block['where']}", file=sys.stderr)
            traceback.print_exc()
            return 1
        print(flush=True)
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
