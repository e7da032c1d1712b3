"""The HTTP router and the ``rempart incident`` command, on a hand-built archive."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from cases_helpers import write_archive
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from test_cases_affected import harvest_alert, harvest_log

from rempart.cases.api import make_app


def test_api_opens_incidents_and_serves_affected_people_reports_and_audited_changes(
    cases_factory,
):
    log, exposed, _ = harvest_log()
    cases = cases_factory(log.events)
    client = TestClient(make_app(cases))
    r = client.post(
        "/v1/incidents/open-from-alerts",
        json=[harvest_alert().to_dict()],
        headers={"X-Rempart-Actor": "alice"},
    )
    assert r.status_code == 200
    (inc,) = r.json()["created"]
    assert [i["id"] for i in client.get("/v1/incidents").json()] == [inc]
    affected = client.get(f"/v1/incidents/{inc}/affected").json()
    assert affected["people"] == 201
    assert {p["token"] for p in affected["people_list"]} == exposed
    csv_text = client.get(f"/v1/incidents/{inc}/affected.csv").text
    assert csv_text.startswith("token,") and csv_text.count("\n") == 202
    doc = client.get(f"/v1/incidents/{inc}/report", params={"format": "json"}).json()
    assert doc["personnes_concernees"]["nombre"] == 201
    pdf = client.get(f"/v1/incidents/{inc}/report", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Claire" not in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    r = client.post(
        f"/v1/incidents/{inc}/status",
        json={"status": "contained"},
        headers={"X-Rempart-Actor": "bob"},
    )
    assert r.json()["status"] == "contained"
    trail = client.get(f"/v1/incidents/{inc}/audit").json()
    assert (trail[0]["actor"], trail[0]["action"]) == ("alice", "incident.open")
    assert ("bob", "incident.status") in [(e["actor"], e["action"]) for e in trail]
    assert client.get("/v1/incidents/999").status_code == 404
    bad = client.post(f"/v1/incidents/{inc}/status", json={"status": "new"})
    assert bad.status_code == 400 and "cannot go to new" in bad.json()["error"]


def rempart(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from rempart.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_builds_incidents_from_hunt_output_and_writes_every_document(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rempart.cli import app

    monkeypatch.chdir(tmp_path)
    log, _, _ = harvest_log()
    write_archive(log.events, tmp_path / "archive")
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(json.dumps(harvest_alert().to_dict()) + "\n{not json}\n")
    base = [
        "incident",
        "--db",
        f"sqlite:///{tmp_path}/state.db",
        "--archive",
        str(tmp_path / "archive"),
        "--actor",
        "alice",
    ]
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    r = run("open-from-alerts", str(alerts), "--json")
    out = json.loads(r.stdout)
    assert out["created"] == [1] and out["lines_skipped"] == 1
    assert "alerts.jsonl:2: not an alert" in r.stderr
    assert "201 people" in run("affected", "1", "--out", "aff.csv").stdout
    assert (tmp_path / "aff.csv").read_text().count("\n") == 202
    for fmt in ("md", "pdf", "json"):
        run("report", "1", "--format", fmt)
        assert (tmp_path / f"incident-1-art33.{fmt}").stat().st_size > 1000
    shown = run("show", "1").stdout
    assert "203.0.113.0/24" in shown and "login_failure" in shown
    run("status", "1", "triage")
    run("note", "1", "pharmacie prévenue")
    assert "chain intact" in run("audit", "--verify").stdout
    trail = json.loads(run("audit", "1", "--json").stdout)
    assert [e["actor"] for e in trail] == ["alice"] * len(trail)
    assert trail[-1]["details"] == {"text": "pharmacie prévenue"}


def test_cli_errors_are_one_clear_line(tmp_path):
    base = ["incident", "--db", f"sqlite:///{tmp_path}/state.db", "--archive", str(tmp_path)]
    r = rempart(*base, "show", "42", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "rempart: error: no incident 42 (hint: rempart incident list)"
    r = rempart(*base, "open-from-alerts", "missing.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "cannot read alerts" in r.stderr and "Traceback" not in r.stderr


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.text(max_size=80), st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["id", "rule", "rule_version", "severity", "entity_type", "entity",
                     "first_seen", "detected_at"]), st.one_of(st.text(max_size=8), st.integers())
))), max_size=6))  # fmt: skip
def test_reading_hunt_output_never_crashes_and_accounts_for_every_line(tmp_path, lines):
    from rempart.cli.incident import read_alerts

    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines))
    alerts, bad = read_alerts(path)
    non_blank = [ln for ln in path.read_text().splitlines() if ln.strip()]
    assert len(alerts) + len(bad) == len(non_blank)
