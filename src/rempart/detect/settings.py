"""Configuration of the detection engine (section ``detection`` of the config file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from rempart.settings import StrictModel


class DetectionSettings(StrictModel):
    #: Extra rule directories loaded after the profile's built-in pack.
    rules: list[Path] = Field(default_factory=list)
    #: Rule ids to disable.
    disabled: list[str] = Field(default_factory=list)
    #: How late (seconds of event time) an out-of-order event may arrive and still be counted.
    lateness_seconds: float = Field(default=120.0, ge=0)
    #: ``rempart watch``: seconds between two checkpoints of the engine state (and position).
    checkpoint_seconds: float = Field(default=30.0, gt=0)
