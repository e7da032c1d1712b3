"""The compiled modules (mypyc, ``rempart.native``) behave exactly as their Python sources.

``make`` builds them; ``REMPART_PURE=1`` loads the sources instead. Two fresh processes, one each
way, decode the same ten-day log with every attack scenario and run the shipped pack over it:
alerts, their explanations and the dumped engine state must be byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rempart import native

_RUN = """
import hashlib, json, sys
import msgspec
from rempart import native
from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.ingest import read_events
from rempart.protect.tokens import Tokenizer, TokenKey

tok = Tokenizer(TokenKey("native-test", b"k" * 32))
engine = Engine(load_pack("tiers-payant"), lateness=120)
events = read_events([sys.argv[1]], profile="tiers-payant", tokenizer=tok)
for ev in events:
    engine.process(ev)
engine.flush()
alerts = sorted((a.to_dict() for a in engine.alerts.values()), key=lambda a: a["id"])
digest = lambda obj: hashlib.sha256(msgspec.msgpack.encode(obj, order="sorted")).hexdigest()
print(json.dumps({
    "compiled": native.loaded_compiled(),
    "alerts": len(alerts),
    "alerts_sha": digest(alerts),
    "state_sha": digest(engine.dump_state()),
}))
"""


def _run(log: Path, pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "REMPART_PURE"}
    if pure:
        env["REMPART_PURE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, str(log)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_compiled_modules_raise_exactly_the_alerts_and_state_of_the_sources(
    all_scenarios_log: Path,
) -> None:
    compiled = _run(all_scenarios_log, pure=False)
    if not compiled["compiled"]:
        if os.environ.get("REMPART_REQUIRE_NATIVE"):  # set by .ci/run: the build must compile
            pytest.fail("no compiled module: the mypyc build fell back to pure Python")
        pytest.skip("built without a C compiler: no compiled module to compare")
    pure = _run(all_scenarios_log, pure=True)
    assert pure["compiled"] == []
    assert compiled["compiled"] == list(native.NATIVE_MODULES)
    assert isinstance(pure["alerts"], int) and pure["alerts"] > 10
    assert {k: v for k, v in compiled.items() if k != "compiled"} == {
        k: v for k, v in pure.items() if k != "compiled"
    }


def test_a_compiled_module_older_than_its_source_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")  # a source checkout: src/rempart beside it
    pkg = tmp_path / "src" / "rempart"
    for module in native.NATIVE_MODULES:
        source = pkg.parent.joinpath(*module.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
    suffix = native.machinery.EXTENSION_SUFFIXES[0]
    built = pkg / "detect" / f"engine{suffix}"
    built.write_bytes(b"")
    (pkg / "detect" / f"care{suffix}").write_bytes(b"")
    monkeypatch.setattr(native, "_ROOT", pkg)
    assert native.stale_modules() == []  # built after the sources
    engine_source = pkg / "detect" / "engine.py"
    os.utime(engine_source, (built.stat().st_mtime + 5, built.stat().st_mtime + 5))
    assert native.stale_modules() == ["rempart.detect.engine"]
    assert native.compiled_path("rempart.detect.history") is None
    # Installed from a wheel, or a wheel unpacked anywhere (its files' times say nothing):
    # never stale. The same tree under another directory than a checkout's src is not one.
    for place in ("site-packages", "builds/0123abcd", "src-copy"):
        installed = tmp_path / place
        installed.mkdir(parents=True)
        pkg.rename(installed / "rempart")
        pkg = installed / "rempart"
        monkeypatch.setattr(native, "_ROOT", pkg)
        assert native.compiled_path("rempart.detect.engine") is not None
        assert native.stale_modules() == [], place


def test_the_version_says_whether_the_modules_run_compiled_and_main_warns_when_stale(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rempart import cli

    monkeypatch.setattr(sys, "argv", ["rempart", "--version"])
    monkeypatch.setenv("REMPART_PURE", "1")
    with pytest.raises(SystemExit):
        cli.main()
    out, err = capsys.readouterr()
    assert "pure Python: REMPART_PURE is set" in out and err == ""
    monkeypatch.delenv("REMPART_PURE")
    monkeypatch.setattr(native, "stale_modules", lambda: ["rempart.detect.engine"])
    with pytest.raises(SystemExit):
        cli.main()
    out, err = capsys.readouterr()
    assert f"/{len(native.NATIVE_MODULES)} per-event modules compiled" in out
    assert err.count("\n") == 1 and "rempart.detect.engine" in err and "make" in err


_FAKE_LIBRT = '''"""A librt.strings without its C API: what a librt the modules were not built for looks
like to their compiled code (the functions still serve the sources)."""
import struct
def read_i32_le(b, i): return struct.unpack_from("<i", b, i)[0]
def read_i32_be(b, i): return struct.unpack_from(">i", b, i)[0]
def read_i64_le(b, i): return struct.unpack_from("<q", b, i)[0]
def read_f64_le(b, i): return struct.unpack_from("<d", b, i)[0]
'''


def test_when_the_compiled_modules_cannot_load_then_rempart_runs_from_its_sources_and_says_so(
    tmp_path: Path,
) -> None:
    if native.compiled_path("rempart.events") is None:
        pytest.skip("built without a C compiler: no compiled module to refuse")
    (tmp_path / "librt").mkdir()
    (tmp_path / "librt" / "__init__.py").write_text("")
    (tmp_path / "librt" / "strings.py").write_text(_FAKE_LIBRT)
    env = {k: v for k, v in os.environ.items() if k != "REMPART_PURE"}
    env["PYTHONPATH"] = str(tmp_path)
    code = (
        "import rempart.events, rempart.ingest.distinct, rempart.detect.engine\n"
        "from rempart import native\n"
        "from rempart.cli import _build\n"
        "print(native.loaded_compiled(), _build())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] pure Python: the compiled modules cannot be loaded"
    assert "the compiled modules cannot be loaded" in proc.stderr and "librt" in proc.stderr
    # With the real librt, the same process loads them compiled and says nothing.
    del env["PYTHONPATH"]
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "per-event modules compiled" in proc.stdout
