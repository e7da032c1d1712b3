"""Care relationships from outside the log: which beneficiaries each account has billed before.

The access log shows what an account read since Rempart started watching it. A tiers-payant
operator knows more: its claims history says which beneficiaries each practitioner has billed.
Loaded into the engine's first-seen history (``Engine.add_care_history``), it turns "never read
since deployment" into "no claim on record and never read": a regular patient's first visit
since deployment is no longer a stranger, and an insider's stranger stands out (see
docs/care-history.md).

Format: CSV, UTF-8 (a byte-order mark is skipped), separated by commas, or by the semicolons
or tabs of spreadsheet exports (the header's separator is taken), with a header line naming at
least the columns ``account`` (the portal login, as the access log has it) and
``beneficiary`` (the identifier as the portal's URLs carry it, e.g. the 15-character NIR);
other columns are ignored (a last claim's date, say). Each
identifier is normalised and tokenised with the deployment's key, like the log's, then reduced
to the history's 32-bit hash: no raw identifier is kept. Bad rows are counted by reason and set
aside in the quarantine with their file and line (NIR-shaped runs tokenised), never dropped
silently.
"""

from __future__ import annotations

import csv
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from rempart.config import Config
from rempart.detect.history import beneficiary_hash
from rempart.errors import InputError
from rempart.ingest.normalise import NIR_LIKE, normalise_identifier, redact_bytes
from rempart.ingest.quarantine import Quarantine
from rempart.protect.identifiers import is_valid_nir
from rempart.protect.tokens import Tokenizer

COLUMNS = ("account", "beneficiary")
#: Longest identifier taken (a NIR has 15 characters; portal ids are short).
MAX_IDENTIFIER = 64
#: Identifiers whose hash a load keeps at most (about 100 MB), to tokenise each one once.
HASH_CACHE = 1_000_000
#: Why a row can be set aside, and what the quarantine says of it.
REASONS = {
    "missing_field": "no account or no beneficiary",
    "bad_encoding": "not UTF-8 text, or not a CSV row",
    "bad_identifier": f"the beneficiary is not letters and digits, at most {MAX_IDENTIFIER}",
    "bad_nir": "the beneficiary is NIR-shaped with a wrong key",
}


@dataclass
class CareHistory:
    """Per account, the hashes of the beneficiaries it has a care relationship with (sorted,
    distinct: 4 bytes each; millions of relationships would take 70 bytes each in sets)."""

    accounts: dict[str, array[int]] = field(default_factory=dict)
    files: int = 0
    rows: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    quarantine_file: str | None = None

    @property
    def relationships(self) -> int:
        return sum(len(v) for v in self.accounts.values())

    def note(self) -> str:
        """One line for the operator: what was loaded, and what was set aside where."""
        text = (
            f"care history: {_n(self.relationships, 'relationship')} of "
            f"{_n(len(self.accounts), 'account')} from {_n(self.rows, 'row')} in "
            f"{_n(self.files, 'file')}"
        )
        bad = sum(self.rejected.values())
        if bad:
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.rejected.items()))
            where = (
                f"kept in {self.quarantine_file}"
                if self.quarantine_file
                else "counted, not kept (no quarantine directory)"
            )
            text += f"; {bad:,} bad row{'' if bad == 1 else 's'} ({reasons}) {where}"
        return text


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _problem(ident: str) -> str | None:
    """Why a normalised identifier cannot be taken (None: it can)."""
    if not ident.isascii() or not ident.isalnum() or len(ident) > MAX_IDENTIFIER:
        return "bad_identifier"
    if len(ident) != 15:
        return None
    if ident.isdigit():  # the common case, a mainland NIR: its key, without a regex
        if ident[0] in "12378" and 97 - int(ident[:13]) % 97 != int(ident[13:]):
            return "bad_nir"
        return None
    if NIR_LIKE.fullmatch(ident) and not is_valid_nir(ident):  # Corsica (2A, 2B)
        return "bad_nir"
    return None


@contextmanager
def _open(path: Path) -> Iterator[tuple[str, Any]]:
    """(source name, a CSV reader) of ``path``. The delimiter is the header's: a comma, or the
    semicolon or tab of spreadsheet exports; a UTF-8 byte-order mark is skipped."""
    source = str(path)
    try:
        fh = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except FileNotFoundError:
        raise InputError("care history file not found", where=source) from None
    except OSError as exc:
        raise InputError(f"cannot read care history: {exc.strerror}", where=source) from None
    with fh:
        first = fh.readline()
        delimiter = max(",;\t", key=first.count)
        yield source, csv.reader(chain([first], fh), delimiter=delimiter)


def _columns(source: str, reader: Any) -> tuple[int, int]:
    """The positions of ``account`` and ``beneficiary`` in the header, or one clear error."""
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise InputError(f"cannot read care history: {exc}", where=source) from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"care history CSV needs the columns {', '.join(COLUMNS)} "
            f"(missing: {', '.join(missing)})",
            where=f"{source}:1",
        )
    return header.index("account"), header.index("beneficiary")


def load_care_history(
    paths: Sequence[Path], tokenizer: Tokenizer, quarantine_dir: Path | None = None
) -> CareHistory:
    """Read care relationship CSVs (see the module docstring). A file that cannot be read at
    all raises :class:`InputError`; a bad row is counted and, with ``quarantine_dir``, kept
    there in a file of its own (``quarantine-care-*.jsonl``)."""
    out = CareHistory()
    q = Quarantine(
        quarantine_dir,
        redact=lambda data: redact_bytes(data, tokenizer),
        run_name="care-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"),
    )
    # A beneficiary is on record with several practitioners of its town: its hash is made once
    # (an HMAC is most of a row's cost), in a cache of this load's own, bounded; the
    # tokenizer's cache is the log's.
    token = tokenizer.fresh_token
    made: dict[str, int] = {}
    accounts = out.accounts
    try:
        for path in paths:
            out.files += 1
            with _open(path) as (source, reader):
                ai, bi = _columns(source, reader)
                width = max(ai, bi) + 1
                while True:
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:  # (a NUL byte, an unterminated quote...)
                        out.rows += 1
                        q.add(source, reader.line_num, "bad_encoding", str(exc), b"")
                        continue
                    if not row:
                        continue  # a blank line
                    out.rows += 1
                    reason = None
                    if len(row) < width or not row[ai].strip() or not row[bi].strip():
                        reason = "missing_field"
                    else:
                        account, raw = row[ai].strip(), row[bi].strip()
                        if not (account.isprintable() and raw.isprintable()):  # (surrogates)
                            reason = "bad_encoding"
                        else:
                            ident = normalise_identifier(raw)
                            reason = _problem(ident)
                    if reason is not None:
                        line = ",".join(row).encode("utf-8", "surrogateescape")
                        q.add(source, reader.line_num, reason, REASONS[reason], line)
                        continue
                    hashes = accounts.get(account)
                    if hashes is None:
                        hashes = accounts[account] = array("I")
                    h = made.get(ident)
                    if h is None:
                        if len(made) >= HASH_CACHE:
                            made.clear()
                        h = made[ident] = beneficiary_hash(token(ident))
                    hashes.append(h)
    finally:
        q.close()
    for account, hashes in accounts.items():
        accounts[account] = array("I", sorted(set(hashes)))
    out.rejected = Counter(q.counts)
    out.quarantine_file = str(q.path) if q.path else None
    return out


def configured_care_history(config: Config, tokenizer: Tokenizer) -> CareHistory | None:
    """The configuration's ``care_history`` files, loaded (bad rows into its quarantine
    directory); None when it names none."""
    if not config.care_history:
        return None
    return load_care_history(
        [p.expanduser() for p in config.care_history],
        tokenizer,
        config.state.quarantine_dir.expanduser(),
    )
