"""``rempart protect``: find identifiers, pseudonymise, mask, encrypt, rotate keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from rempart.cli._common import console, err_console, print_json

protect_app = typer.Typer(
    help="Data protection: scan for French identifiers, pseudonymise, mask, encrypt, rotate.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="Manage a passphrase-protected keyring of data keys.", no_args_is_help=True
)
protect_app.add_typer(keys_app, name="keys")

COLUMN_OPT = typer.Option(..., "--column", "-k", help="Column(s), repeatable or comma-separated.")
KEYRING_OPT = typer.Option(None, "--keyring", help="Keyring file (passphrase-protected).")
KEYFILE_OPT = typer.Option(None, "--key-file", help="Plain key file (mode 0600, id:hex lines).")


def _columns(specs: list[str]) -> list[str]:
    return [c.strip() for s in specs for c in s.split(",") if c.strip()]


def _passphrase(confirm: bool = False) -> str:
    from rempart.protect.crypto import PASSPHRASE_ENV

    phrase = os.environ.get(PASSPHRASE_ENV)
    if phrase:
        return phrase
    value: str = typer.prompt("Keyring passphrase", hide_input=True,
                              confirmation_prompt=confirm)  # fmt: skip
    return value


def _keyring(keyring: Path | None, key_file: Path | None) -> Any:
    from rempart.protect.crypto import resolve_keyring

    phrase = _passphrase() if keyring is not None else None
    return resolve_keyring(keyring=keyring, passphrase=phrase, key_file=key_file)


def _report_transform(report: Any, out: Path) -> None:
    console.print(f"[green]ok[/green] {out}: {report.rows} rows, {report.cells} values transformed")
    if report.rejected:
        err_console.print(f"[yellow]{report.rejected} value(s) set aside (emptied):[/yellow]")
        for line in report.rejects[:20]:
            err_console.print(f"  {line}")


# ----------------------------------------------------------------------------- scan


@protect_app.command("scan")
def scan(
    paths: list[Path] = typer.Argument(None, help="Files or directories (.gz read as is)."),
    db: list[str] = typer.Option([], "--db", help="SQLAlchemy database URL (sampled)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or sarif."),
    allow: Path | None = typer.Option(None, "--allow", help="Allow-list: 'GLOB [KIND]' lines."),
    fail_above: int | None = typer.Option(
        None, "--fail-above", help="Exit 1 when more than N findings are not allowed (CI)."
    ),
    min_confidence: float = typer.Option(0.5, "--min-confidence", min=0.0, max=1.0),
    max_findings: int = typer.Option(
        10_000, "--max-findings", help="Findings described in detail (all are counted)."
    ),
) -> None:
    """Find NIR, RPPS, ADELI, FINESS, SIREN/SIRET, IBAN, phones, e-mails, dates of birth."""
    from rempart.errors import InputError
    from rempart.protect.scanner import AllowList
    from rempart.protect.scanner import scan as run_scan

    if fmt not in ("table", "json", "sarif"):
        raise InputError(f"unknown format {fmt!r}", hint="table, json or sarif")
    if not paths and not db:
        raise InputError("nothing to scan", hint="give paths and/or --db URL")
    report = run_scan(
        paths or [],
        db_urls=db,
        min_confidence=min_confidence,
        allow=AllowList.load(allow) if allow else None,
        max_findings=max_findings,
    )
    if fmt == "json":
        print_json(report.to_dict())
    elif fmt == "sarif":
        print_json(to_sarif(report))
    else:
        _print_scan_table(report)
    if fail_above is not None and report.reported > fail_above:
        raise typer.Exit(1)


def _print_scan_table(report: Any) -> None:
    from rich.table import Table

    mbps = report.bytes_scanned / max(report.seconds, 1e-9) / 1e6
    console.print(
        f"scanned {report.bytes_scanned / 1e6:.1f} MB in {report.seconds:.2f} s ({mbps:.0f} MB/s)"
    )
    kinds = Table(title="Findings by type")
    kinds.add_column("type")
    kinds.add_column("count", justify="right")
    for kind, n in report.by_kind().most_common():
        kinds.add_row(kind, str(n))
    console.print(kinds)
    where = Table(title="Findings by location")
    for col in ("location", "type", "count"):
        where.add_column(col, justify="right" if col == "count" else "left")
    for (loc, kind), n in report.counts.most_common(30):
        where.add_row(loc, kind, str(n))
    console.print(where)
    detail = Table(title="First findings (values masked)")
    for col in ("where", "type", "confidence", "sample", "note"):
        detail.add_column(col)
    for f in report.findings[:50]:
        loc = (
            f.location + (f":{f.column}" if f.column else "") + (f" [{f.field}]" if f.field else "")
        )
        note = "allowed" if f.allowed else (f"{f.rows} rows" if f.rows > 1 else "")
        detail.add_row(loc, f.kind, f"{f.confidence:.2f}", f.sample, note)
    console.print(detail)
    console.print(f"{report.reported} finding(s) not allowed")


def to_sarif(report: Any) -> dict[str, Any]:
    """SARIF 2.1.0, one rule per identifier type."""
    kinds = sorted({f.kind for f in report.findings})
    results = []
    for f in report.findings:
        region: dict[str, Any] = {}
        if f.line is not None:
            region = {"startLine": f.line, "startColumn": f.column or 1}
        loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": f.source}}}
        if region:
            loc["physicalLocation"]["region"] = region
        if f.field:
            loc["logicalLocations"] = [{"name": f.field}]
        results.append(
            {
                "ruleId": f.kind,
                "level": "note" if f.allowed else ("error" if f.kind == "nir" else "warning"),
                "message": {
                    "text": f"{f.kind} {f.sample} (confidence {f.confidence:.2f}, {f.rows} row(s))"
                },
                "locations": [loc],
            }
        )
    return {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rempart-protect",
                        "rules": [
                            {"id": k, "shortDescription": {"text": f"French {k}"}} for k in kinds
                        ],
                    }
                },
                "results": results,
            }
        ],
    }


# ----------------------------------------------------------------------------- identifiers


@protect_app.command("explain")
def explain(value: str = typer.Argument(..., help="A value to identify, e.g. a NIR.")) -> None:
    """Say which French identifier VALUE is; explain a NIR (sex, year, month, place)."""
    from rempart.protect import identifiers as ids

    kinds = [k for k, ok in ids.VALIDATORS.items() if ok(value)]
    if not kinds:
        console.print("not a valid identifier of any known type")
        raise typer.Exit(1)
    console.print(f"{ids.mask(value)}: {', '.join(kinds)}")
    if "nir" in kinds:
        console.print(ids.parse_nir(value).explain())


# ----------------------------------------------------------------------------- transforms


@protect_app.command("pseudonymize")
def pseudonymize(
    src: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet file."),
    out: Path = typer.Option(..., "--out", "-o"),
    columns: list[str] = COLUMN_OPT,
    purpose: str = typer.Option("stats", "--purpose", help="Tokens differ per purpose."),
    nir: bool = typer.Option(False, "--nir", help="Values are NIRs: normalise, reject invalid."),
    fpe: bool = typer.Option(False, "--fpe", help="NIR-shaped tokens (never a valid NIR)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Token key file (id:hex)."),
) -> None:
    """Replace values by keyed tokens (HMAC-SHA256), or NIR-shaped FPE tokens with --fpe."""
    from rempart.protect.fpe import NirFpe
    from rempart.protect.tokens import Tokenizer, resolve_key
    from rempart.protect.transform import fpe_fn, pseudonymize_fn, transform_file

    key = resolve_key(file=key_file)
    ops = {}
    for col in _columns(columns):
        ops[col] = (fpe_fn(NirFpe(key, purpose)) if fpe
                    else pseudonymize_fn(Tokenizer(key, purpose), nir=nir))  # fmt: skip
    _report_transform(transform_file(src, out, ops), out)


@protect_app.command("mask")
def mask(
    src: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet file."),
    out: Path = typer.Option(..., "--out", "-o"),
    columns: list[str] = typer.Option(
        ...,
        "--column",
        "-k",
        help="COLUMN:MODE; modes: mask, nir, year, month, departement, redact.",
    ),
) -> None:
    """Mask or generalise columns (date of birth -> year, commune -> département...)."""
    from rempart.protect.transform import mask_fn, parse_column_specs, transform_file

    ops = {col: mask_fn(mode) for col, mode in parse_column_specs(columns).items()}
    _report_transform(transform_file(src, out, ops), out)


@protect_app.command("encrypt")
def encrypt(
    src: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet file."),
    out: Path = typer.Option(..., "--out", "-o"),
    columns: list[str] = COLUMN_OPT,
    keyring: Path | None = KEYRING_OPT,
    key_file: Path | None = KEYFILE_OPT,
) -> None:
    """Encrypt columns with the active key (AES-256-GCM, column name bound)."""
    from rempart.protect.crypto import CellCipher
    from rempart.protect.transform import encrypt_fn, transform_file

    cipher = CellCipher(_keyring(keyring, key_file))
    ops = {c: encrypt_fn(cipher, c) for c in _columns(columns)}
    _report_transform(transform_file(src, out, ops), out)


@protect_app.command("decrypt")
def decrypt(
    src: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet file."),
    out: Path = typer.Option(..., "--out", "-o"),
    columns: list[str] = COLUMN_OPT,
    keyring: Path | None = KEYRING_OPT,
    key_file: Path | None = KEYFILE_OPT,
) -> None:
    """Decrypt columns; any wrong key or tampered value stops with no output file."""
    from rempart.protect.crypto import CellCipher
    from rempart.protect.transform import decrypt_fn, transform_file

    cipher = CellCipher(_keyring(keyring, key_file))
    ops = {c: decrypt_fn(cipher, c) for c in _columns(columns)}
    _report_transform(transform_file(src, out, ops), out)


@protect_app.command("rotate")
def rotate(
    src: Path = typer.Argument(..., help="CSV, TSV, JSONL or Parquet file."),
    columns: list[str] = COLUMN_OPT,
    out: Path | None = typer.Option(None, "--out", "-o", help="Default: rewrite SRC in place."),
    to: str | None = typer.Option(None, "--to", help="Target key id (default: active key)."),
    keyring: Path | None = KEYRING_OPT,
    key_file: Path | None = KEYFILE_OPT,
    checkpoint_every: int = typer.Option(50_000, "--checkpoint-every", min=1),
) -> None:
    """Re-encrypt columns under the new key; resumable (run again after an interruption)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from rempart.protect.rotate import rotate_file

    ring = _keyring(keyring, key_file)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=err_console,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"rotating to {to or ring.active}", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = rotate_file(src, _columns(columns), ring, to_key=to, dst=out,
                             checkpoint_every=checkpoint_every, on_progress=step)  # fmt: skip
    resumed = f", resumed at record {result.resumed_at_row}" if result.resumed_at_row else ""
    console.print(
        f"[green]verified[/green] {out or src}: {result.rows} records, {result.cells} values "
        f"now under {to or ring.active}{resumed}; keys seen: {', '.join(sorted(result.from_keys))}"
    )


# ----------------------------------------------------------------------------- keys


@keys_app.command("init")
def keys_init(path: Path = typer.Argument(..., help="Keyring file to create.")) -> None:
    """Create a keyring with one active key."""
    from rempart.errors import KeyMaterialError
    from rempart.protect.crypto import Keyring

    if path.exists():
        raise KeyMaterialError("keyring already exists", where=str(path))
    ring = Keyring()
    kid = ring.add()
    ring.save(path, _passphrase(confirm=True))
    console.print(f"[green]created[/green] {path} with active key {kid}")


@keys_app.command("add")
def keys_add(
    path: Path = typer.Argument(..., help="Keyring file."),
    key_id: str | None = typer.Option(None, "--id", help="Key id (default k<N>)."),
    activate: bool = typer.Option(True, "--activate/--no-activate"),
) -> None:
    """Add a new key (active by default: then run `rotate`)."""
    from rempart.protect.crypto import Keyring

    phrase = _passphrase()
    ring = Keyring.load(path, phrase)
    kid = ring.add(key_id, activate=activate)
    ring.save(path, phrase)
    console.print(f"[green]added[/green] {kid}; active key: {ring.active}")


@keys_app.command("list")
def keys_list(path: Path = typer.Argument(..., help="Keyring file.")) -> None:
    """List key ids (never secrets)."""
    from rempart.protect.crypto import Keyring

    ring = Keyring.load(path, _passphrase())
    for kid in ring.keys:
        mark = " (active)" if kid == ring.active else ""
        console.print(f"{kid}{mark} created {ring.created.get(kid, '?')}")
    for kid, when in ring.retired.items():
        console.print(f"{kid} retired {when}")


@keys_app.command("retire")
def keys_retire(
    path: Path = typer.Argument(..., help="Keyring file."),
    key_id: str = typer.Argument(..., help="Key to retire."),
    check: list[Path] = typer.Option(
        ..., "--check", help="Files or directories that must no longer use the key."
    ),
) -> None:
    """Forget a key, only if none of the --check paths still holds a value under it."""
    from rempart.errors import KeyMaterialError
    from rempart.protect.crypto import Keyring
    from rempart.protect.rotate import key_usage

    phrase = _passphrase()
    ring = Keyring.load(path, phrase)
    usage = key_usage(check, key_id)
    if usage:
        first = ", ".join(f"{p} ({n})" for p, n in list(usage.items())[:3])
        raise KeyMaterialError(f"key {key_id} still used by {sum(usage.values())} value(s): "
                               f"{first}", hint="rotate these files first")  # fmt: skip
    ring.retire(key_id)
    ring.save(path, phrase)
    console.print(f"[green]retired[/green] {key_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(protect_app, name="protect")
