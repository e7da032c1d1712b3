"""Detection: declarative rules compiled to a pure, event-time driven engine.

Public API (import from the submodules; this package stays light because the configuration
imports ``rempart.detect.settings``)::

    from rempart.detect.loader import load_pack, load_rules, lint_rules
    from rempart.detect.engine import Engine          # Engine(specs, lateness=120).process(ev)
    from rempart.detect.store import StateStore       # StateStore(url).save(engine.dump_state())
    from rempart.detect.hunt import run_hunt, run_watch
    from rempart.detect.samples import run_samples
    from rempart.detect.evaluate import evaluate_seed, summarise

See ``docs/detection.md`` and ``docs/rules.md``.
"""
