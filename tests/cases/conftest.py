"""Fixtures of the cases tests (helpers live in cases_helpers, a uniquely named module)."""

from cases_helpers import cases_factory

__all__ = ["cases_factory"]
