"""GenerationParams: validated sampling and length settings for one request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._messages import check_text
from .errors import InvalidRequest

__all__ = ["GenerationParams", "parse_params"]

MAX_STOP_SEQUENCES = 16


class GenerationParams(BaseModel):
    """Sampling and length settings. Unknown names are errors, never ignored.

    ``temperature=0`` (the default) is greedy decoding: deterministic output.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    max_tokens: int = Field(256, ge=1, le=1_000_000, description="New tokens at most.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Sample among the k likeliest; 0 disables.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed for sampling.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences (not emitted).")
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0, description="1.0 disables.")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            if len(value) > MAX_STOP_SEQUENCES:
                raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
            if any(not isinstance(s, str) or not s for s in value):
                raise ValueError("each stop sequence must be a non-empty string")
            for index, sequence in enumerate(value):
                check_text(sequence, f"stop[{index}]")
            return list(value)
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


_FIXES = {
    "max_tokens": "pass an integer >= 1",
    "temperature": "pass a number between 0 (greedy) and 2",
    "top_p": "pass a number in (0, 1]",
    "top_k": "pass an integer >= 0 (0 disables top-k)",
    "seed": "pass an integer between 0 and 2**32-1, or None",
    "stop": "pass a string or a list of non-empty strings",
    "repetition_penalty": "pass a number > 0 (1.0 disables)",
}


def parse_params(base: GenerationParams | None = None, **overrides: Any) -> GenerationParams:
    """Merge ``overrides`` into ``base``; raise InvalidRequest naming the bad field."""
    data = base.model_dump() if base is not None else {}
    data.update(overrides)
    try:
        return GenerationParams.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InvalidRequest):  # a text check already named field and fix
            raise InvalidRequest(str(cause), field=cause.field) from None
        name = str(error["loc"][0]) if error["loc"] else "params"
        if error["type"] == "extra_forbidden":
            known = ", ".join(GenerationParams.model_fields)
            raise InvalidRequest(
                f"unknown generation parameter {name!r}; known parameters: {known}", field=name
            ) from None
        fix = _FIXES.get(name, "see GenerationParams")
        raise InvalidRequest(
            f"invalid {name}={error.get('input')!r}: {error['msg']}; {fix}", field=name
        ) from None
