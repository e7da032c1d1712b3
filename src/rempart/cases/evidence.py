"""Evidence bundle of an incident, and its replay.

``write_bundle`` writes a ``.tar.gz`` holding:

- ``alerts.jsonl``: the incident's alerts (``Alert.to_dict()``);
- ``lines.jsonl``: the raw log lines the alerts rest on (source, line, text), NIR-shaped runs
  replaced by their tokens (no raw NIR leaves Rempart except through ``reidentify``);
- ``rules/``: the rule files in force, with their SHA-256 (the rule versions);
- ``ledger.parquet``: the ledger extract of the incident (its disclosures, with their origin);
- ``affected.csv``: the affected people (tokens);
- ``incident.json``: the incident, its windows with their reasoning, its audit trail;
- ``care_history.json`` (when the deployment loads care relationships, docs/care-history.md):
  the relationships as the engine holds them, 32-bit hashes of keyed tokens per account, with
  the token key's id (no identifier, no token);
- ``manifest.json``: SHA-256 of every member above, of every input file the evidence cites,
  the profile, the engine's lateness and the alert ids a replay must reproduce.

``verify_bundle`` checks every hash, checks that the given input files are the ones cited, runs
the detection engine with the bundled rules over them and reports whether every bundled alert
id comes out again (alert ids are deterministic: rule, entity and first event time). With a care
history, the replay needs the deployment's token key (the hashes are of its tokens); without
it, the replay runs on the log alone and says so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import tempfile
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from rempart import __version__
from rempart.alerts import Alert
from rempart.errors import InputError

if TYPE_CHECKING:
    from rempart.ingest.care import CareHistory
    from rempart.protect.tokens import TokenKey

BUNDLE_FORMAT = "rempart-evidence/1"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_lines(
    refs: Iterable[tuple[str, int]], redact: Callable[[str], str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Text of each (source, line), redacted; and the sources that could not be read."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for source, line in refs:
        if source and line > 0:
            wanted[source].add(line)
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    from rempart.ingest.sources import open_binary

    for source, lines in sorted(wanted.items()):
        path = Path(source)
        if not path.is_file():
            missing.append(source)
            continue
        last = max(lines)
        with open_binary(path) as fh:
            for n, raw in enumerate(fh, start=1):
                if n in lines:
                    text = raw.decode("utf-8", "replace").rstrip("\r\n")
                    out.append({"source": source, "line": n, "text": redact(text)})
                if n >= last:
                    break
    return out, missing


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


@dataclass(slots=True)
class BundleContent:
    incident: dict[str, Any]
    alerts: Sequence[Alert]
    ledger: pa.Table
    affected_csv: bytes
    rule_files: Sequence[Path]
    profile: str
    lateness: float
    redact: Callable[[str], str]
    token_key_id: str | None = None
    extra: dict[str, bytes] = field(default_factory=dict)
    #: The care relationships the engine held (``CareHistory``), when it held any.
    care: CareHistory | None = None


CARE_MEMBER = "care_history.json"


def care_member(care: CareHistory, key_id: str | None) -> bytes:
    """The care relationships as a bundle member: per account, its sorted 32-bit hashes,
    little-endian, base64 (sorted accounts: the same relationships give the same bytes)."""
    accounts = {}
    for account in sorted(care.accounts):
        values = array("I", care.accounts[account])
        if sys.byteorder != "little":
            values.byteswap()
        accounts[account] = base64.b64encode(values.tobytes()).decode("ascii")
    return json.dumps({"token_key_id": key_id, "accounts": accounts}).encode()


def read_care_member(data: bytes) -> tuple[str | None, dict[str, array[int]]]:
    """(token key id, account -> hashes) of :func:`care_member`'s bytes."""
    doc = json.loads(data)
    out = {}
    for account, text in doc["accounts"].items():
        values = array("I")
        values.frombytes(base64.b64decode(text))
        if sys.byteorder != "little":
            values.byteswap()
        out[account] = values
    return doc.get("token_key_id"), out


def write_bundle(content: BundleContent, out: Path) -> dict[str, Any]:
    """Write the bundle; returns its manifest."""
    now = time.time()
    members: dict[str, bytes] = {}
    members["alerts.jsonl"] = "".join(
        json.dumps(a.to_dict(), sort_keys=True, ensure_ascii=False) + "\n" for a in content.alerts
    ).encode()
    refs = {(e.source, e.line) for a in content.alerts for e in a.evidence}
    lines, missing = read_lines(refs, content.redact)
    members["lines.jsonl"] = "".join(
        json.dumps(x, ensure_ascii=False) + "\n" for x in lines
    ).encode()
    buf = io.BytesIO()
    pq.write_table(content.ledger, buf, compression="zstd")
    members["ledger.parquet"] = buf.getvalue()
    members["affected.csv"] = content.affected_csv
    members["incident.json"] = json.dumps(content.incident, indent=2, ensure_ascii=False).encode()
    rules = []
    for i, f in enumerate(content.rule_files):
        data = f.read_bytes()
        name = f"rules/{i:03d}-{f.name}"
        members[name] = data
        rules.append({"file": str(f), "member": name, "sha256": sha256_bytes(data)})
    members.update(content.extra)
    care = None
    if content.care is not None:
        members[CARE_MEMBER] = care_member(content.care, content.token_key_id)
        care = {
            "member": CARE_MEMBER,
            "relationships": content.care.relationships,
            "accounts": len(content.care.accounts),
            "token_key_id": content.token_key_id,
        }
    # Inputs: every source the alerts or the ledger extract rest on (a replay reads them all).
    ledger_sources = (
        set(content.ledger.column("source").to_pylist())
        if "source" in content.ledger.column_names
        else set()
    )
    sources = sorted({s for s, _ in refs if s} | {s for s in ledger_sources if s})
    inputs = []
    for s in sources:
        p = Path(s)
        inputs.append(
            {
                "source": s,
                "sha256": sha256_file(p) if p.is_file() else None,
                "size": p.stat().st_size if p.is_file() else None,
            }
        )
    manifest = {
        "format": BUNDLE_FORMAT,
        "created": now,
        "rempart": __version__,
        "incident": content.incident.get("id"),
        "profile": content.profile,
        "lateness_seconds": content.lateness,
        "token_key_id": content.token_key_id,
        "alert_ids": sorted(a.id for a in content.alerts),
        "rules": rules,
        "inputs": inputs,
        "care_history": care,
        "unreadable_sources": missing,
        "members": {name: sha256_bytes(data) for name, data in sorted(members.items())},
    }
    try:
        with tarfile.open(out, "w:gz") as tar:
            for name, data in sorted(members.items()):
                _add(tar, name, data, now)
            _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode(), now)
    except OSError as exc:
        raise InputError(f"cannot write the bundle: {exc.strerror}", where=str(out)) from None
    return manifest


@dataclass(slots=True)
class ReplayReport:
    ok: bool
    problems: list[str]
    expected: list[str]
    reproduced: list[str]
    missing: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "expected": len(self.expected),
            "reproduced": len(self.reproduced),
            "missing": self.missing,
        }


def open_bundle(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Manifest and members of a bundle (members checked against the manifest by the caller)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {}
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                fh = tar.extractfile(m)
                if fh is not None:
                    members[m.name] = fh.read()
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"not a readable evidence bundle: {exc}", where=str(path)) from None
    if "manifest.json" not in members:
        raise InputError("evidence bundle without manifest.json", where=str(path))
    manifest: dict[str, Any] = json.loads(members.pop("manifest.json"))
    return manifest, members


def check_members(manifest: dict[str, Any], members: dict[str, bytes]) -> list[str]:
    problems = []
    listed = manifest.get("members", {})
    for name, digest in listed.items():
        if name not in members:
            problems.append(f"{name}: missing from the bundle")
        elif sha256_bytes(members[name]) != digest:
            problems.append(f"{name}: content does not match its SHA-256")
    for name in members:
        if name not in listed:
            problems.append(f"{name}: not listed in the manifest")
    return problems


def verify_bundle(
    path: Path, inputs: Sequence[Path] | None = None, key: TokenKey | None = None
) -> ReplayReport:
    """Check hashes, then replay the cited inputs (or ``inputs``) with the bundled rules, and
    with the bundled care history when ``key`` is the deployment's token key."""
    from rempart.detect.engine import Engine
    from rempart.detect.loader import load_rules
    from rempart.ingest import read_events
    from rempart.protect.tokens import Tokenizer

    manifest, members = open_bundle(path)
    problems = check_members(manifest, members)
    expected = list(manifest.get("alert_ids", []))
    cited = {i["source"]: i for i in manifest.get("inputs", [])}
    files = [Path(p) for p in inputs] if inputs else [Path(s) for s in sorted(cited)]
    by_hash = {i["sha256"]: i["source"] for i in cited.values() if i.get("sha256")}
    for f in files:
        if not f.is_file():
            problems.append(f"{f}: input file not found")
            continue
        digest = sha256_file(f)
        if digest not in by_hash:
            problems.append(f"{f}: SHA-256 differs from every input the bundle cites")
    if problems:
        return ReplayReport(False, problems, expected, [], expected)
    with tempfile.TemporaryDirectory(prefix="rempart-replay-") as tmp:
        rule_paths = []
        for r in manifest.get("rules", []):
            p = Path(tmp) / Path(r["member"]).name
            p.write_bytes(members[r["member"]])
            rule_paths.append(p)
        specs = load_rules(rule_paths)
        engine = Engine(specs, lateness=float(manifest.get("lateness_seconds", 0.0)))
        care = manifest.get("care_history")
        if care and care.get("member") in members:
            key_id, relationships = read_care_member(members[care["member"]])
            if key is not None and key.key_id == key_id:
                engine.add_care_history(relationships)
            else:
                problems.append(
                    f"the alerts were raised with a care history ({care['relationships']:,} "
                    f"relationships): replaying with it needs the token key {key_id}; "
                    "replayed on the log alone"
                )
        for ev in read_events(
            sorted(files, key=str),
            profile=manifest.get("profile", "tiers-payant"),
            tokenizer=Tokenizer(key) if key is not None else None,
        ):
            engine.process(ev)
        engine.flush()
        produced = set(engine.alerts)
    missing = [a for a in expected if a not in produced]
    reproduced = [a for a in expected if a in produced]
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} alert(s) not reproduced")
    return ReplayReport(not missing, problems, expected, reproduced, missing)
