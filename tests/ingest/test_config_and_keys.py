"""Configuration fails closed with one clear line; token keys are created safely."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.config import load_config, parse_config
from rempart.errors import ConfigError, KeyMaterialError
from rempart.protect.tokens import Tokenizer, TokenKey, load_or_create_key_file, resolve_key


def _rempart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rempart", *args], capture_output=True, text=True)


def test_unknown_key_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "rempart.yaml"
    cfg.write_text("profile: tiers-payant\nstate:\n  url: sqlite:///x.db\n  archiv_dir: /tmp\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(err.value) == f"{cfg}:4: state.archiv_dir: unknown key"


def test_wrong_type_says_what_was_expected(tmp_path):
    cfg = tmp_path / "rempart.yaml"
    cfg.write_text("detection:\n  lateness_seconds: soon\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert f"{cfg}:2: detection.lateness_seconds:" in str(err.value)
    assert "number" in str(err.value)


def test_config_check_cli_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources:\n  - path: /var/log/x.log\n    format: xml\n")
    proc = _rempart("config", "check", str(cfg))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.yaml:3: sources.0.format" in proc.stderr and "Traceback" not in proc.stderr


def test_example_config_is_valid():
    proc = _rempart("config", "example")
    assert proc.returncode == 0
    parse_config(proc.stdout, where="example")


def test_missing_config_file_is_one_line():
    proc = _rempart("config", "check", "/nonexistent/rempart.yaml")
    assert proc.returncode == 2 and "configuration file not found" in proc.stderr


def test_version_and_help():
    assert _rempart("--version").stdout.startswith("rempart ")
    for sub in (["ingest"], ["config"], ["config", "check"]):
        proc = _rempart(*sub, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "keys" / "token.key"
    k1 = load_or_create_key_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_key_file(path) == k1
    assert "secret=<redacted>" in repr(k1) and k1.secret.hex() not in repr(k1)


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "token.key"
    load_or_create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="chmod 600"):
        load_or_create_key_file(path)


def test_environment_key_wins_over_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REMPART_TOKEN_KEY", "env1:" + "ab" * 32)
    assert resolve_key(file=tmp_path / "unused.key").key_id == "env1"
    assert not (tmp_path / "unused.key").exists()


def test_malformed_key_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("REMPART_TOKEN_KEY", "nocolon")
    with pytest.raises(KeyMaterialError, match="REMPART_TOKEN_KEY"):
        resolve_key(file=None)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_tokens_are_deterministic_keyed_and_purpose_bound(a, b):
    key = TokenKey("k1", b"s" * 32)
    other = TokenKey("k1", b"t" * 32)
    t = Tokenizer(key)
    assert t(a) == Tokenizer(key)(a)
    assert t(a).startswith("k1.") and len(t(a)) == 3 + 20
    assert t(a) != Tokenizer(other)(a)
    assert t(a) != Tokenizer(key, purpose="statistics")(a)
    if a != b:
        assert t(a) != t(b)


def test_ingest_cli_creates_its_key_file_from_config(tmp_path):
    cfg = tmp_path / "r.yaml"
    key = tmp_path / "k" / "token.key"
    cfg.write_text(
        f"keys:\n  token_key_file: {key}\n  token_key_env: REMPART_TEST_UNSET\n"
        f"state:\n  quarantine_dir: {tmp_path / 'q'}\n"
    )
    log = tmp_path / "a.log"
    log.write_text(
        '1.2.3.4 - PH0001 [29/Nov/2026:09:00:00 +0100] "GET /api/v1/me HTTP/1.1" 200 1 "-" "x"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "REMPART_TOKEN_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "rempart", "ingest", str(log), "-c", str(cfg), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert key.exists() and os.stat(key).st_mode & 0o777 == 0o600
    assert Path(key).read_text().strip().startswith("k1:")
