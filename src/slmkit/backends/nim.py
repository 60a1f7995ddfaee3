"""Backend ``nim``: NVIDIA NIM, hosted or self-hosted; OpenAI protocol.

Hosted: https://integrate.api.nvidia.com/v1 with a key from ``NVIDIA_API_KEY``.
Self-hosted (a NIM container): ``base_url="http://host:8000/v1"`` or ``NIM_BASE_URL``;
no key needed. Model ids look like ``meta/llama-3.2-3b-instruct``.
"""

from __future__ import annotations

from typing import ClassVar

from ._openai_compatible import OpenAICompatibleBackend

__all__ = ["NIMBackend"]


class NIMBackend(OpenAICompatibleBackend):
    name: ClassVar[str] = "nim"
    description: ClassVar[str] = "NVIDIA NIM (integrate.api.nvidia.com or a self-hosted NIM)"
    key_env: ClassVar[tuple[str, ...]] = ("NVIDIA_API_KEY",)
    url_env: ClassVar[tuple[str, ...]] = ("NIM_BASE_URL",)
    default_url: ClassVar[str | None] = "https://integrate.api.nvidia.com/v1"
