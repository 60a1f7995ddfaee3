"""Run one slmkit call in a fresh interpreter and print its outcome as JSON.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and HF_TOKEN's neighbours at import,
so each call gets its own process with the environment the test chose.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def run(action: dict[str, Any]) -> Any:
    import slmkit

    if action.get("without_hub"):
        sys.modules["huggingface_hub"] = None  # type: ignore[assignment]  # as if not installed
    if action["do"] == "pull":
        return str(slmkit.pull(*action["args"], **action.get("kwargs", {})))
    if action["do"] == "generate":
        with slmkit.load(action["model"], backend=action["backend"]) as llm:
            completion = llm.generate(action["prompt"], max_tokens=action["max_tokens"])
            return {
                "text": completion.text,
                "completion_tokens": completion.usage.completion_tokens,
                "artifact": llm.info.artifact,
            }
    if action["do"] == "import":
        _ = slmkit.pull
        return sorted(m for m in sys.modules if m.split(".")[0] in ("huggingface_hub", "tqdm"))
    raise ValueError(action["do"])


def main() -> None:
    from slmkit.errors import SlmkitError

    try:
        outcome: dict[str, Any] = {"ok": run(json.loads(sys.argv[1]))}
    except SlmkitError as exc:
        outcome = {
            "error": type(exc).__name__,
            "bases": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc),
        }
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
