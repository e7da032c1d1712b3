"""Render bench/peers/RESULTS.md from the report dict built by run.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOOLS = [("rempart", "Rempart"), ("crowdsec", "CrowdSec"), ("fail2ban", "fail2ban")]
THROUGHPUT = [
    ("rempart", "Rempart `hunt`"),
    ("crowdsec", "CrowdSec replay"),
    ("fail2ban-server", "fail2ban server"),
    ("fail2ban-regex", "fail2ban-regex (5 filters)"),
]


NOTES = [
    "## Notes",
    "",
    "- Wall times depend on the load of this shared machine (other jobs ran at the same time);",
    "  CPU seconds are steadier. Ratios compare the same run's medians.",
    "- `rempart hunt` runs as two processes on a machine with two or more cores (`--workers 2`,",
    "  the default: a child decodes and runs some rules, the parent runs the others); its CPU",
    "  seconds include the child's, its peak RSS is the larger process's. CrowdSec also uses",
    "  several threads.",
    "- Rempart is timed over several runs; each peer run on the large log takes minutes, so the",
    "  peers get one timed run after their warm-up by default (`PEERS_PEER_RUNS=3` for more).",
    "- fail2ban can only replay a historical log with a `findtime` reaching back to its first",
    "  line (it drops older lines at start-up), so its counts run over the whole 7-day log;",
    "  thresholds are the highest legitimate count + 10% (see README).",
    "- CrowdSec runs with our own grok parser: with the stock `crowdsecurity/nginx-logs` parser",
    "  the same replay was about 10× more CPU (107 s vs 10.5 s on a 52k-line log, no scenarios).",
    "- Records exposed are counted from truth.json: beneficiaries the attack had read by the time",
    "  of the first alert naming one of its accounts or IPs; blocking could only start then.",
    "",
]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def cell(score: dict[str, Any]) -> str:
    if score["detected"] == 0:
        return f"✘ missed · {score['exposed_before']:,} exp."
    mark = (
        "✔" if score["detected"] == score["attacks"] else f"{score['detected']}/{score['attacks']}"
    )
    text = f"{mark} {duration(score['time_to_detect'])} · {score['exposed_before']:,} exp."
    total = score.get("entities_total", 0)
    if total > 2:
        text += f" · {score['entities_named']}/{total} named"
    return text


def attacks_detected(result: dict[str, Any]) -> str:
    scores = result["scenarios"]
    return f"{sum(s['detected'] for s in scores)}/{sum(s['attacks'] for s in scores)}"


def throughput_table(size: str, data: dict[str, Any]) -> list[str]:
    tools = data["tools"]
    rem = tools.get("rempart")
    lines = [
        f"**{size} log** ({data['lines']:,} lines, {data['accounts']} accounts; "
        "medians after a warm-up; runs per tool in the last column)",
        "",
        "| tool | wall s | lines/s | CPU s | peak RSS MB | Rempart ÷ tool: lines/s, CPU | runs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in THROUGHPUT:
        if key not in tools:
            continue
        t = tools[key]
        if key == "rempart" or rem is None:
            ratio = "-"
        else:
            speed = rem["lines_per_s"] / t["lines_per_s"]
            ratio = f"{speed:.1f}× · {t['cpu'] / rem['cpu']:.1f}×"
        lines.append(
            f"| {label} | {t['wall']:.1f} | {t['lines_per_s']:,.0f} | {t['cpu']:.1f} "
            f"| {t['rss_mb']:.0f} | {ratio} | {t['runs']} |"
        )
    return lines


def detection_table(report: dict[str, Any]) -> list[str]:
    head = (
        "| scenario (records the attack exposed) | "
        + " | ".join(label for _, label in TOOLS)
        + " |"
    )
    lines = [head, "|---|" + "---|" * len(TOOLS)]
    fps = {tool: 0 for tool, _ in TOOLS}
    for scenario, result in report["scenarios"].items():
        row = []
        exposed = None
        for tool, _ in TOOLS:
            if tool not in result:
                row.append("not run")
                continue
            scores = result[tool]["scenarios"]
            fps[tool] += result[tool]["false_positive_entities"]
            match = [s for s in scores if s["scenario"] == scenario]
            if not match:
                row.append("no attack in truth")
                continue
            exposed = match[0]["exposed_total"]
            row.append(cell(match[0]))
        lines.append(
            f"| {scenario} ({exposed if exposed is not None else '?'}) | " + " | ".join(row) + " |"
        )
    lines.append(
        "| false-positive entities, all scenario logs | "
        + " | ".join(str(fps[t]) for t, _ in TOOLS)
        + " |"
    )
    for size, data in report["sizes"].items():
        det = data.get("detection", {})
        if det:
            lines.append(
                f"| attacks detected in the {size} log (all scenarios mixed) | "
                + " | ".join(attacks_detected(det[t]) if t in det else "-" for t, _ in TOOLS)
                + " |"
            )
            lines.append(
                f"| false-positive entities, {size} log | "
                + " | ".join(
                    str(det[t]["false_positive_entities"]) if t in det else "-" for t, _ in TOOLS
                )
                + " |"
            )
    return lines


def verdict(report: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against this run's figures."""
    lines = ["## Targets (issue 7), checked on this run", ""]
    for size, data in report["sizes"].items():
        tools = data["tools"]
        if "rempart" not in tools:
            continue
        peers = {k: v for k, v in tools.items() if k != "rempart"}
        fastest = max(peers, key=lambda k: peers[k]["lines_per_s"])
        by_wall = tools["rempart"]["lines_per_s"] / peers[fastest]["lines_per_s"]
        by_cpu = peers[fastest]["cpu"] / tools["rempart"]["cpu"]
        met = "met" if by_wall >= 10 else "**not met**"
        lines.append(
            f"- Throughput ≥ 10× the faster peer ({fastest}) on the {size} log: {met} "
            f"({by_wall:.1f}× in lines/s of wall time, {by_cpu:.1f}× in CPU seconds)."
        )
    behind = []
    for scenario, result in report["scenarios"].items():
        if "rempart" not in result:
            continue
        mine = next(s for s in result["rempart"]["scenarios"] if s["scenario"] == scenario)
        for tool in ("crowdsec", "fail2ban"):
            other = next(s for s in result[tool]["scenarios"] if s["scenario"] == scenario)
            if not other["detected"]:
                continue
            if not mine["detected"]:
                behind.append(f"{scenario}: missed, {tool} detected it")
            elif other["exposed_before"] < mine["exposed_before"]:
                behind.append(f"{scenario}: more records exposed than {tool}")
            elif (other["time_to_detect"] or 0) < (mine["time_to_detect"] or 0):
                gap = (mine["time_to_detect"] or 0) - (other["time_to_detect"] or 0)
                behind.append(f"{scenario}: {tool} alerted {duration(gap)} earlier")
    fps = {
        t: sum(r[t]["false_positive_entities"] for r in report["scenarios"].values() if t in r)
        for t in ("rempart", "crowdsec", "fail2ban")
    }
    lines.append(
        "- Behind neither peer on any scenario (detected, records exposed, time to detect): "
        + ("yes" if not behind else "not everywhere: " + "; ".join(behind))
        + f". False-positive entities on the scenario logs: Rempart {fps['rempart']}, "
        f"CrowdSec {fps['crowdsec']}, fail2ban {fps['fail2ban']}."
    )
    return [*lines, ""]


def write_results(report: dict[str, Any], path: Path) -> None:
    m, v = report["machine"], report["versions"]
    out = [
        "# Rempart vs fail2ban vs CrowdSec: same logs, same machine, one run",
        "",
        f"- Date: {report['date']}; command: `{report['command']}` "
        f"(bench/peers/run.sh; total {report.get('elapsed_s', 0) / 60:.0f} min)",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, Linux {m['kernel']}; "
        "shared with other jobs",
        f"- Versions: {v['rempart']} (commit {report.get('commit', '?')}); CrowdSec {v['crowdsec']} (Debian); {v['fail2ban']} (Debian); "
        f"Python {v['python']}",
        f"- Logs: `rempart sim`, {report['days']} days, portal format nginx combined + "
        "request_time + session cookie; "
        f"one log per attack scenario ({report['scenario_accounts']} accounts); configurations in "
        "[bench/peers/README.md](README.md)",
        "",
        "## Throughput (whole process, `/usr/bin/time -v`)",
        "",
    ]
    for size, data in report["sizes"].items():
        out += [*throughput_table(size, data), ""]
    out += [
        "## Detection (one simulated log per attack scenario)",
        "",
        "Cell: detected? · time from attack start to first alert · beneficiary records the attack",
        "had already read at that moment (all of them when missed) · for attacks with more than",
        "two accounts/IPs, how many of them some alert named. Alerts naming an attack's",
        "accounts/IPs count;",
        "a false-positive entity is an alerted IP/account/campaign that belongs to no attack.",
        "",
    ]
    out += [*detection_table(report), ""]
    thr = report["fail2ban_thresholds"]
    out += [
        "fail2ban thresholds (calibrated on attack-free traffic, counts over the whole log): "
        + ", ".join(f"{k.lower()}={val}" for k, val in thr.items())
        + ".",
        "",
    ]
    out += verdict(report)
    out += NOTES
    remarks = report.get("remarks", [])
    if remarks:
        out += ["Remarks on this run (operator's observations, kept in results.json):", ""]
        out += [f"- {r}" for r in remarks] + [""]
    path.write_text("\n".join(out), encoding="utf-8")
