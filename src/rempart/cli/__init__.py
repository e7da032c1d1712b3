"""The ``rempart`` command: a thin shell over the library, one sub-command per noun.

Each module of this package (other than ``_common``) defines ``register(app)`` and is discovered
automatically, so pillars add their commands without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from rempart import __version__, native
from rempart.errors import RempartError

app = typer.Typer(
    name="rempart",
    help="Rempart: detect and stop harvesting of health-data portals; measure who was exposed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _build() -> str:
    """Whether the per-event modules run compiled (``rempart.native``)."""
    if native.pure_requested():
        return "pure Python: REMPART_PURE is set"
    if native.fallback is not None:
        return "pure Python: the compiled modules cannot be loaded"
    built = sum(native.compiled_path(m) is not None for m in native.NATIVE_MODULES)
    return f"{built}/{len(native.NATIVE_MODULES)} per-event modules compiled"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rempart {__version__} ({_build()})")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Rempart command line."""


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    """Entry point: one clear line on expected errors, never a traceback."""
    stale = native.stale_in_use()
    if stale:
        print(
            f"rempart: warning: compiled modules older than their source ({', '.join(stale)}): "
            "`make` rebuilds them; REMPART_PURE=1 runs the sources",
            file=sys.stderr,
        )
    try:
        app()
    except RempartError as exc:
        print(f"rempart: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("rempart: interrupted", file=sys.stderr)
        sys.exit(130)
