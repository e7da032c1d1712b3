"""Detection: declarative rules compiled to a pure, event-time driven engine."""
