"""Rempart: detection and incident response for health-data portals."""

__version__ = "0.1.0"
