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
    r = runner.invoke(
        app, ["token", "create", "--scope", "enforce", "--name", "nginx", "-c", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("rmp_")
    assert token.encode() not in (tmp_path / "state.db").read_bytes()
    r = runner.invoke(app, ["token", "create", "--scope", "root", "--name", "x", "-c", str(cfg)])
    assert r.exit_code != 0


def test_decisions_add_list_revoke_and_audit(tmp_path: Path) -> None:
    cfg = str(config_file(tmp_path))
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "account",
            "PH0042",
            "--reason",
            "phished",
            "--duration",
            "2h",
            "-c",
            cfg,
        ],
    )
    assert r.exit_code == 0, r.output
    decision_id = r.output.split(":")[0].strip()
    r = runner.invoke(app, ["decisions", "list", "--live", "--json", "-c", cfg])
    assert '"value": "PH0042"' in r.output and '"type": "block"' in r.output
    r = runner.invoke(app, ["decisions", "revoke", decision_id, "--reason", "reset", "-c", cfg])
    assert r.exit_code == 0
    r = runner.invoke(app, ["decisions", "audit", "-c", cfg])
    assert r.exit_code == 0 and "chain ok" in r.output and "decision.revoked" in r.output


def _server_config(tmp_path: Path) -> Path:
    """A configuration file for ``rempart serve`` with its state in ``tmp_path``."""
    cfg = tmp_path / "rempart.yaml"
    cfg.write_text(
        f"state:\n  url: sqlite:///{tmp_path / 'state.db'}\n"
        f"keys:\n  token_key_file: {tmp_path / 'token.key'}\n"
    )
    return cfg


def _serve_command(cfg: Path) -> list[str]:
    """``rempart serve -c cfg`` in a process of its own (the entry point: one error line)."""
    import sys

    return [sys.executable, "-c", "from rempart.cli import main; main()", "serve", "-c", str(cfg)]


def test_rempart_serve_runs_as_a_process_and_answers(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    import httpx

    cfg = _server_config(tmp_path)
    r = CliRunner().invoke(app, ["token", "create", "-s", "admin", "-n", "ops", "-c", str(cfg)])
    token = r.output.strip().splitlines()[-1]
    from tests.ports import reserve_port

    # The server inherits the reserved socket (--fd): no other process can hold the port.
    sock = reserve_port()
    sock.listen()
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [*_serve_command(cfg), "--fd", str(sock.fileno())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(sock.fileno(),),
    )
    sock.close()
    try:
        assert proc.stdout is not None
        assert (
            f"serving on http://127.0.0.1:{port} (inherited socket"
            in proc.stdout.readline().decode()
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                health = httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(
            url + "/v1/decisions",
            headers=auth,
            json={"scope": "account", "value": "PH0042", "type": "block", "reason": "phished"},
        )
        assert r.status_code == 201
        # admin tokens may also check (admin implies every scope)
        assert (
            httpx.get(
                url + "/v1/decisions/check", params={"account": "PH0042"}, headers=auth
            ).status_code
            == 403
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    bad = CliRunner().invoke(app, ["serve", "-c", str(cfg), "--follow-from", "middle"])
    assert bad.exit_code != 0


def test_rempart_serve_refuses_an_fd_that_is_not_a_listening_socket(tmp_path: Path) -> None:
    import subprocess

    from tests.ports import reserve_port

    cfg = _server_config(tmp_path)
    command = _serve_command(cfg)
    with reserve_port() as bound:  # bound, not listening
        fd = bound.fileno()
        for args, message in (
            (["--fd", "987"], "--fd 987: not an open socket"),
            (["--fd", str(fd)], f"--fd {fd}: not a listening TCP socket"),
        ):
            done = subprocess.run(
                [*command, *args], capture_output=True, text=True, pass_fds=(fd,), timeout=60
            )
            assert done.returncode == 2
            assert done.stderr.splitlines()[-1].startswith(f"rempart: error: {message}")
            assert "Traceback" not in done.stderr, done.stderr
