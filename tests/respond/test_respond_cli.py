from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rempart.cli import app


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "rempart.yaml"
    path.write_text(f"state:\n  url: sqlite:///{tmp_path / 'state.db'}\n")
    return path


def test_token_create_prints_it_once_and_stores_only_a_hash(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["token", "create", "--scope", "enforce", "--name", "nginx", "-c",
                            str(cfg)])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("rmp_")
    assert token.encode() not in (tmp_path / "state.db").read_bytes()
    r = runner.invoke(app, ["token", "create", "--scope", "root", "--name", "x", "-c", str(cfg)])
    assert r.exit_code != 0


def test_decisions_add_list_revoke_and_audit(tmp_path: Path) -> None:
    cfg = str(config_file(tmp_path))
    runner = CliRunner()
    r = runner.invoke(app, ["decisions", "add", "account", "PH0042", "--reason", "phished",
                            "--duration", "2h", "-c", cfg])
    assert r.exit_code == 0, r.output
    decision_id = r.output.split(":")[0].strip()
    r = runner.invoke(app, ["decisions", "list", "--live", "--json", "-c", cfg])
    assert '"value": "PH0042"' in r.output and '"type": "block"' in r.output
    r = runner.invoke(app, ["decisions", "revoke", decision_id, "--reason", "reset", "-c", cfg])
    assert r.exit_code == 0
    r = runner.invoke(app, ["decisions", "audit", "-c", cfg])
    assert r.exit_code == 0 and "chain ok" in r.output and "decision.revoked" in r.output
