"""Run Rempart, fail2ban and CrowdSec on one log, each in a private directory, and measure them.

Every tool runs as a whole process under ``/usr/bin/time -v`` (wall, CPU, peak RSS). Nothing
outside ``bench/peers/work/`` is written; no service or firewall is touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from peers_scoring import Detection, crowdsec_detection, fail2ban_detection, rempart_detection

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON_BIN = REPO / ".venv" / "bin"

F2B_FILTERS = [
    "rempart-login-fail",
    "rempart-login-fail-account",
    "rempart-probe",
    "rempart-reads",
    "rempart-reads-account",
]


@dataclass(frozen=True, slots=True)
class Measure:
    wall: float
    cpu: float
    rss_mb: float


def _parse_time_v(path: Path) -> Measure:
    text = path.read_text(encoding="utf-8", errors="replace")

    def grab(label: str) -> str:
        match = re.search(re.escape(label) + r":\s*(\S+)", text)
        if not match:
            raise RuntimeError(f"/usr/bin/time output lacks {label!r}: {text[-500:]}")
        return match.group(1)

    parts = [float(p) for p in grab("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = 0.0
    for part in parts:
        wall = wall * 60 + part
    cpu = float(grab("User time (seconds)")) + float(grab("System time (seconds)"))
    rss = float(grab("Maximum resident set size (kbytes)")) / 1024
    return Measure(wall, cpu, rss)


def timed(cmd: list[str], out_dir: Path, tag: str, env: dict[str, str] | None = None) -> Measure:
    """Run ``cmd`` under ``/usr/bin/time -v``; stdout/stderr kept in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tfile = out_dir / f"{tag}.time"
    with (out_dir / f"{tag}.out").open("wb") as out, (out_dir / f"{tag}.err").open("wb") as err:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(tfile), *cmd],
            stdout=out,
            stderr=err,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        tail = (out_dir / f"{tag}.err").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}): {tail}")
    return _parse_time_v(tfile)


# --- Rempart ----------------------------------------------------------------------------------


def run_rempart(log: Path, work: Path, tag: str) -> tuple[Measure, list[Detection]]:
    out = work / f"{tag}.alerts.jsonl"
    out.unlink(missing_ok=True)
    cmd = [
        str(PYTHON_BIN / "rempart"),
        "hunt",
        str(log),
        "--profile",
        "tiers-payant",
        "--out",
        str(out),
        "--json",
    ]
    measure = timed(cmd, work, tag)
    detections = []
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.strip():
            detections.append(rempart_detection(json.loads(line)))
    return measure, detections


# --- fail2ban ---------------------------------------------------------------------------------


def run_fail2ban_regex(log: Path, work: Path, tag: str) -> Measure:
    """fail2ban-regex once per filter (it takes one filter per process); figures are summed."""
    total = Measure(0.0, 0.0, 0.0)
    for name in F2B_FILTERS:
        cmd = ["fail2ban-regex", str(log), str(HERE / "fail2ban" / "filter.d" / f"{name}.conf")]
        m = timed(cmd, work, f"{tag}.{name}")
        total = Measure(total.wall + m.wall, total.cpu + m.cpu, max(total.rss_mb, m.rss_mb))
    return total


def render_fail2ban(work: Path, log: Path, findtime: int, thresholds: dict[str, int]) -> Path:
    conf = work / "fail2ban"
    shutil.rmtree(conf, ignore_errors=True)
    conf.mkdir(parents=True)
    shutil.copytree(HERE / "fail2ban" / "filter.d", conf / "filter.d")
    shutil.copytree(HERE / "fail2ban" / "action.d", conf / "action.d")
    text = (HERE / "fail2ban" / "fail2ban.conf.in").read_text().replace("@WORK@", str(conf))
    (conf / "fail2ban.conf").write_text(text)
    jail = (HERE / "fail2ban" / "jail.conf.in").read_text()
    jail = (
        jail.replace("@WORK@", str(conf))
        .replace("@LOG@", str(log))
        .replace("@FINDTIME@", str(findtime))
    )
    for key, value in thresholds.items():
        jail = jail.replace(f"@{key}@", str(value))
    (conf / "jail.conf").write_text(jail)
    return conf


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_fail2ban_server(
    conf: Path, timeout: float = 1800.0, quiet: float = 3.0
) -> tuple[Measure, list[Detection]]:
    """Start a private fail2ban server on the log, wait until it has read it, stop it.

    The server has no "done" signal: it is considered done when its CPU time has not grown for
    ``quiet`` seconds (its polling backend then only stats the file once a second). The wall
    time reported stops at the last CPU growth, not at the end of the quiet period."""
    bans = conf / "bans.tsv"
    bans.unlink(missing_ok=True)
    tfile = conf / "server.time"
    start = time.monotonic()
    with (conf / "server.out").open("wb") as out:
        proc = subprocess.Popen(
            [
                "/usr/bin/time",
                "-v",
                "-o",
                str(tfile),
                "fail2ban-server",
                "-f",
                "-x",
                "-c",
                str(conf),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        pid_file = conf / "fail2ban.pid"
        # The server creates its pid file before it writes the number: wait for the number.
        while not (pid_file.exists() and pid_file.read_text().strip().isdigit()):
            if proc.poll() is not None or time.monotonic() - start > 60:
                raise RuntimeError(
                    f"fail2ban-server did not start: {(conf / 'server.out').read_text()[-1000:]}"
                )
            time.sleep(0.05)
        pid = int(pid_file.read_text().strip())
        last_cpu, last_growth = -1.0, time.monotonic()
        while time.monotonic() - last_growth < quiet:
            if time.monotonic() - start > timeout:
                raise RuntimeError("fail2ban-server still busy after the timeout")
            cpu = _cpu_seconds(pid)
            if cpu - last_cpu > 0.02:
                last_cpu, last_growth = cpu, time.monotonic()
            time.sleep(0.2)
        wall = last_growth - start
    finally:
        subprocess.run(
            ["fail2ban-client", "-c", str(conf), "stop"], capture_output=True, check=False
        )
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    full = _parse_time_v(tfile)
    rows = bans.read_text().splitlines() if bans.exists() else []
    return Measure(wall, full.cpu, full.rss_mb), [fail2ban_detection(r) for r in rows if r.strip()]


# --- CrowdSec ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_crowdsec(work: Path) -> Path:
    """Private config dir: our parsers/scenarios, the package's grok patterns, a fresh LAPI DB."""
    root = work / "crowdsec"
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("etc", "data", "log", "hub"):
        (root / sub).mkdir(parents=True)
    text = (HERE / "crowdsec" / "config.yaml.in").read_text()
    (root / "config.yaml").write_text(
        text.replace("@WORK@", str(root)).replace("@PORT@", str(_free_port()))
    )
    for sub in ("parsers", "scenarios"):
        shutil.copytree(HERE / "crowdsec" / sub, root / "etc" / sub)
    shutil.copy(HERE / "crowdsec" / "profiles.yaml", root / "etc" / "profiles.yaml")
    shutil.copytree("/etc/crowdsec/patterns", root / "etc" / "patterns")
    shutil.copy("/usr/share/crowdsec/hub/.index.json", root / "hub" / ".index.json")
    (root / "etc" / "simulation.yaml").write_text("simulation: false\n")
    (root / "etc" / "acquis.yaml").write_text("")
    return root


def _crowdsec_fresh_db(root: Path) -> None:
    for path in (root / "data").glob("crowdsec.db*"):
        path.unlink()
    subprocess.run(
        [
            "cscli",
            "-c",
            str(root / "config.yaml"),
            "machines",
            "add",
            "bench",
            "--auto",
            "--force",
            "-f",
            str(root / "etc" / "local_api_credentials.yaml"),
        ],
        capture_output=True,
        check=True,
    )


def run_crowdsec(root: Path, log: Path, tag: str) -> tuple[Measure, list[Detection]]:
    """Replay (time-machine) mode: ``crowdsec -dsn file://LOG -type nginx``, private LAPI."""
    _crowdsec_fresh_db(root)
    cmd = [
        "crowdsec",
        "-c",
        str(root / "config.yaml"),
        "-dsn",
        f"file://{log}",
        "-type",
        "nginx",
        "-no-capi",
    ]
    measure = timed(cmd, root / "runs", tag)
    return measure, read_crowdsec_alerts(root / "data" / "crowdsec.db")


def read_crowdsec_alerts(db: Path) -> list[Detection]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select id, scenario, source_scope, source_value, stopped_at from alerts"
        ).fetchall()
        names: dict[int, set[str]] = {}
        for alert_id, serialized in con.execute("select alert_events, serialized from events"):
            for item in json.loads(serialized or "[]"):
                value = item.get("value")
                if item.get("key") in ("source_ip", "user") and value not in (None, "", "-"):
                    names.setdefault(alert_id, set()).add(value)
    finally:
        con.close()
    out: dict[tuple[str, str, float], Detection] = {}
    for alert_id, scenario, scope, value, stopped in rows:
        if scenario.endswith("-site"):
            # A site-wide bucket has many sources: CrowdSec 1.4.6 writes one alert per source,
            # all with the same source value; its events name the IPs and accounts involved.
            det = crowdsec_detection(scenario, "site", "", stopped, names.get(alert_id, set()))
            det = replace(det, key=f"site:{scenario}")
        else:
            det = crowdsec_detection(scenario, scope or "ip", value or "", stopped)
        out.setdefault((det.rule, det.key, det.time), det)
    return list(out.values())
