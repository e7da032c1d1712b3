"""``make demo`` tells the whole story end to end (small, without the live part)."""

from __future__ import annotations

from pathlib import Path

from rempart.demo import main


def test_demo_runs_end_to_end_and_writes_the_cnil_draft(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--accounts", "80", "--skip-live"]) == 0
    printed = capsys.readouterr().out
    assert "mass_harvest-1" in printed and "incidents opened" in printed
    assert (out / "alerts.jsonl").stat().st_size > 0
    drafts = sorted(out.glob("incident-*-art33.*"))
    assert [p.suffix for p in drafts] == [".md", ".pdf"]
    assert "Notification" in drafts[0].read_text(encoding="utf-8") or "CNIL" in drafts[0].read_text(
        encoding="utf-8"
    )
    assert drafts[1].read_bytes().startswith(b"%PDF")
