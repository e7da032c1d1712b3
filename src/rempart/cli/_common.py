"""Shared helpers for CLI modules: console, config option, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from rempart.config import Config, load_config

console = Console()
err_console = Console(stderr=True)

CONFIG_OPTION = typer.Option(
    None, "--config", "-c", help="Configuration file (YAML). Default: embedded defaults."
)


def get_config(path: Path | None) -> Config:
    return load_config(path)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
