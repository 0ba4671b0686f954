"""What every schema shares: strict models (unknown fields, NaN and inf refused), names, seeds, the image bound, and
``{kind: NAME, **params}`` component specs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

#: Seeds (and split seeds) feed numpy's and torch's generators: non-negative 32-bit integers.
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
#: Most images a concept's split may hold (each is resolution² × 3 bytes, twice: source and target).
MAX_IMAGES = 100_000


class _Strict(BaseModel):
    # unknown fields are errors; nan and inf are never a valid setting
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ComponentSpec(BaseModel):
    """``{kind: NAME, **params}`` — a registry entry and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
