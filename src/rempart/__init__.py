"""Rempart: detection and incident response for health-data portals."""

from rempart.native import fall_back_if_unloadable, pure_requested, use_source_modules

__version__ = "0.1.0"

if pure_requested():
    use_source_modules()
else:
    fall_back_if_unloadable()
