"""``rempart config check|example``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from rempart.cli._common import console
from rempart.config import load_config

config_app = typer.Typer(help="Check or print the configuration file.", no_args_is_help=True)


@config_app.command("check")
def check(file: Path = typer.Argument(..., help="Configuration file to validate.")) -> None:
    """Validate FILE; one clear line on the first problem, exit code 2."""
    cfg = load_config(file)
    console.print(f"[green]ok[/green] {file}: profile {cfg.profile}, {len(cfg.sources)} source(s)")


@config_app.command("example")
def example() -> None:
    """Print a commented example configuration."""
    text = resources.files("rempart").joinpath("config.example.yaml").read_text(encoding="utf-8")
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
