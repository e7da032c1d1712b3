"""Configuration of response, the server and notifications (section ``response``)."""

from __future__ import annotations

from rempart.settings import StrictModel


class ResponseSettings(StrictModel):
    #: Record what would be done without enforcing it.
    simulation: bool = False
