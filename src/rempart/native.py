"""Which of Rempart's modules run compiled, and a switch to run every module from its source.

``setup.py`` compiles the modules in ``NATIVE_MODULES`` to C extensions with mypyc when a C
compiler is available: the same typed sources, with ``rempart hunt`` taking 2.5 to 2.8 times
less CPU (the 1M peers log, 2026-11-30: 2.8-3.1 CPU-s compiled, 7.7-7.8 from the sources).
Python imports an extension before the ``.py`` file beside it, so:

- ``REMPART_PURE=1`` in the environment makes ``import rempart`` call ``use_source_modules``:
  every ``rempart`` module is then loaded from its ``.py`` file (to debug, or to compare);
- when the compiled modules cannot be loaded (a ``librt`` other than the one they were built
  for), ``import rempart`` falls back to the sources with a warning
  (``fall_back_if_unloadable``);
- ``stale_modules`` lists compiled modules older than their source in a source checkout (an
  edit not yet rebuilt: ``make`` rebuilds them, ``pip install -e .`` too). The test suite
  refuses to run on those.

No dependencies: ``setup.py`` loads this file on its own, before anything is installed.
"""

from __future__ import annotations

import importlib.machinery as machinery
import os
import sys
from pathlib import Path

#: The modules that run once per event or per distinct value (compiled when possible).
NATIVE_MODULES = (
    "rempart.alerts",
    "rempart.detect.baseline",
    "rempart.detect.baseline_days",
    "rempart.detect.care",
    "rempart.detect.care_state",
    "rempart.detect.engine",
    "rempart.detect.exposure",
    "rempart.detect.expr",
    "rempart.detect.history",
    "rempart.detect.rollup",
    "rempart.detect.windows",
    "rempart.ingest.distinct",
    "rempart.ingest.normalise",
    "rempart.ingest.routes",
    "rempart.protect.tokens",
    "rempart.events",
)

_ROOT = Path(__file__).resolve().parent


def native_sources() -> list[str]:
    """The sources of ``NATIVE_MODULES``, relative to the project root (``setup.py`` compiles
    them; ``python src/rempart/native.py`` prints them for the Makefile)."""
    return ["src/" + m.replace(".", "/") + ".py" for m in NATIVE_MODULES]


def pure_requested() -> bool:
    """Whether ``REMPART_PURE`` asks for the pure-Python modules."""
    return os.environ.get("REMPART_PURE", "") not in ("", "0")


def _source_path(module: str) -> Path:
    return _ROOT.parent.joinpath(*module.split(".")).with_suffix(".py")


def compiled_path(module: str) -> Path | None:
    """The compiled extension of ``module`` beside its source, if one was built."""
    source = _source_path(module)
    for suffix in machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.exists():
            return candidate
    return None


def source_checkout() -> bool:
    """Whether this ``rempart`` is the ``src/rempart`` of a source checkout (beside the
    project's ``pyproject.toml``), where a source can be edited after its extension was built.
    An installed or unpacked wheel cannot hold an edit, and its files' times say nothing: pip
    writes each ``.py`` file after its extension, an unzip in any order."""
    return _ROOT.parent.name == "src" and (_ROOT.parent.parent / "pyproject.toml").is_file()


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after they were built (in a source checkout)."""
    if not source_checkout():
        return []
    stale = []
    for module in NATIVE_MODULES:
        ext = compiled_path(module)
        if ext is not None and ext.stat().st_mtime < _source_path(module).stat().st_mtime:
            stale.append(module)
    return stale


def stale_in_use() -> list[str]:
    """:func:`stale_modules` that this process would load (none with ``REMPART_PURE``)."""
    return [] if pure_requested() else stale_modules()


def loaded_compiled() -> list[str]:
    """Modules of ``NATIVE_MODULES`` this process runs compiled (importing them)."""
    import importlib

    out = []
    for module in NATIVE_MODULES:
        origin = getattr(importlib.import_module(module), "__file__", "") or ""
        if not origin.endswith(".py"):
            out.append(module)
    return out


def _source_finder(path: str) -> machinery.FileFinder:
    if path != str(_ROOT) and not path.startswith(str(_ROOT) + os.sep):
        raise ImportError(path)  # not ours: the next path hook handles it
    return machinery.FileFinder(path, (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES))


def use_source_modules() -> None:
    """From now on, load ``rempart``'s modules from their ``.py`` sources, compiled or not.

    Call it before any of ``NATIVE_MODULES`` is imported (``import rempart`` does, when
    ``REMPART_PURE`` is set)."""
    if _source_finder in sys.path_hooks:
        return
    sys.path_hooks.insert(0, _source_finder)
    for entry in list(sys.path_importer_cache):
        if entry == str(_ROOT) or entry.startswith(str(_ROOT) + os.sep):
            del sys.path_importer_cache[entry]


#: Why the compiled modules could not be loaded (:func:`fall_back_if_unloadable`), if so.
fallback: str | None = None


def fall_back_if_unloadable() -> None:
    """Import the first compiled module; when it cannot be loaded, load every module from its
    source from now on, say why (a warning) and keep the reason in :data:`fallback`.

    The modules that read binary columns check, when imported, that ``librt`` (mypyc's runtime
    library) is the one they were built for: a ``librt`` upgraded or replaced after the build
    makes them refuse to load. Rempart then runs from its sources (the same results, 2.5 to 2.8
    times the CPU) instead of failing; reinstalling it (``make``) rebuilds them."""
    import importlib
    import warnings

    first = "rempart.events"
    if compiled_path(first) is None or first in sys.modules:
        return
    global fallback
    try:
        importlib.import_module(first)
    except Exception as exc:  # any failure of the extension's module init
        sys.modules.pop(first, None)
        use_source_modules()
        fallback = (
            f"rempart: the compiled modules cannot be loaded ({type(exc).__name__}: {exc}); "
            "running from the sources, slower (reinstall rempart to rebuild them)"
        )
        warnings.warn(fallback, RuntimeWarning, stacklevel=2)


if __name__ == "__main__":
    print(" ".join(native_sources()))
