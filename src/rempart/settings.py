"""Base class for every configuration model: fail closed on unknown keys and wrong types."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Pydantic model that refuses unknown keys (``extra="forbid"``) and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
