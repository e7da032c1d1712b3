"""Ingestion: parse portal access logs, normalise to ``Event``, pseudonymise, archive."""

from rempart.ingest.pipeline import (
    EventBatch,
    IngestStats,
    LineDecoder,
    iter_batches,
    make_normalizer,
    read_events,
)
from rempart.ingest.profile import RouteProfile, load_profile
from rempart.ingest.quarantine import Quarantine

__all__ = [
    "EventBatch",
    "IngestStats",
    "LineDecoder",
    "Quarantine",
    "RouteProfile",
    "iter_batches",
    "load_profile",
    "make_normalizer",
    "read_events",
]
