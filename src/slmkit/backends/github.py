"""Backend ``github``: GitHub Models (https://models.github.ai/inference, ``GITHUB_TOKEN``).

GitHub Models was retired on 2026-07-30; its endpoint now answers 410 Gone, which this
backend turns into :class:`~slmkit.errors.ServiceRetired` naming where to move. The
adapter stays because code and config still name it, and because its protocol (OpenAI
chat completions) can be pointed at another endpoint with ``base_url``.
"""

from __future__ import annotations

import os
from typing import ClassVar

from ._hosted import HostedEngine
from ._openai_compatible import OpenAICompatibleBackend, OpenAICompatibleEngine
from .base import Availability

__all__ = ["GitHubModelsBackend"]

RETIRED_ON = "2026-07-30"


class GitHubModelsEngine(OpenAICompatibleEngine):
    def retired_message(self) -> str:
        return (
            f"GitHub Models was retired on {RETIRED_ON} and {self.url} now answers 410 Gone. "
            f"Move to backend 'azure' (the same models on Azure AI Foundry: set "
            f"AZURE_AI_CHAT_ENDPOINT and AZURE_AI_CHAT_KEY), or backend 'openai' with the "
            f"base_url of another OpenAI-compatible server"
        )


class GitHubModelsBackend(OpenAICompatibleBackend):
    name: ClassVar[str] = "github"
    description: ClassVar[str] = f"GitHub Models (retired {RETIRED_ON}; base_url still works)"
    key_env: ClassVar[tuple[str, ...]] = ("GITHUB_TOKEN",)
    url_env: ClassVar[tuple[str, ...]] = ("GITHUB_MODELS_BASE_URL",)
    default_url: ClassVar[str | None] = "https://models.github.ai/inference"
    sampling_extensions: ClassVar[bool] = False
    supports_completion: ClassVar[bool] = False

    @classmethod
    def engine_class(cls) -> type[HostedEngine]:
        return GitHubModelsEngine

    @classmethod
    def check(cls, hardware: object = None) -> Availability:
        base = super().check(hardware)
        if not base.installed or (base.usable and _own_url()):
            return base
        return Availability(
            True,
            False,
            f"GitHub Models was retired on {RETIRED_ON} (its endpoint answers 410); use backend "
            f"'azure', or set GITHUB_MODELS_BASE_URL / base_url=... to another compatible server",
        )


def _own_url() -> bool:
    url = os.environ.get("GITHUB_MODELS_BASE_URL", "")
    return bool(url) and url.rstrip("/") != GitHubModelsBackend.default_url
