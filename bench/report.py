"""Results of the benchmark: medians of repeated runs, the machine, and the Markdown reports
(bench/results/*.md and the generated sections of BENCHMARKS.md)."""

import json
import os
import platform
import re
import subprocess
from pathlib import Path

from servers import log

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "BENCHMARKS.md"
PURE_BIN = "/opt/ftpsync-test/pure-ftpd/usr/sbin/pure-ftpd"  # unpacked by scripts/test-servers.sh
PRO_BIN = "/opt/ftpsync-test/proftpd/usr/sbin/proftpd"
TOOLS = ["ftpsync", "lftp", "rclone"]
OP_LABEL = {"first": "first sync", "rerun": "no change", "mutate": "after changes",
            "ci-first": "first deploy", "ci": "CI redeploy"}


def num(v, fmt):
    return "?" if v is None else format(v, fmt)


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else round((v[n // 2 - 1] + v[n // 2]) / 2, 4)


def aggregate(runs):
    """One cell from repeated runs: the median of each measure; any failed run is flagged."""
    if len(runs) == 1:
        return dict(runs[0], repeats=1)
    by_wall = sorted(runs, key=lambda c: c["wall_s"])
    cell = dict(by_wall[len(by_wall) // 2])
    for k in ("wall_s", "cpu_s", "user_s", "sys_s", "max_rss_mb"):
        cell[k] = median(c[k] for c in runs)
        cell[k + "_runs"] = [c[k] for c in runs]
    cell["repeats"] = len(runs)
    bad = [c for c in runs if c["status"] != "ok"]
    if bad:
        kinds = sorted({c["status"] for c in bad})
        cell["status"] = f"{'/'.join(kinds)} in {len(bad)} of {len(runs)} runs"
        cell["timed_out"] = any(c["timed_out"] for c in runs)
        worst = bad[0]
        for k in ("stderr_tail", "diff_head", "log", "exit_code"):
            if k in worst:
                cell[k] = worst[k]
    return cell


def machine_info():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass

    def first_line(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            out = (p.stdout or p.stderr).strip().splitlines()
            return out[0].strip() if out else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    rev = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml",
                            "Cargo.lock"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "ftpsync": f"{rev}{' + uncommitted changes in src/' if dirty else ''}",
        "lftp": "lftp " + first_line(["lftp", "--version"]).replace("LFTP | ", "").split("|")[0]
        .replace("Version", "").strip(),
        "rclone": first_line(["rclone", "version"]),
        "vsftpd": "vsftpd " + first_line(["sh", "-c", "dpkg-query -W -f '${Version}' vsftpd"]),
        "pure-ftpd": first_line([PURE_BIN, "--help"]).split("[")[0].strip(),
        "proftpd": first_line([PRO_BIN, "-v"]).replace("Version ", ""),
        "openssl": " ".join(first_line(["openssl", "version"]).split()[:2]) + " (the servers' TLS)",
        "python": platform.python_version(),
    }


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def cell_note(c):
    notes = [] if c["status"] == "ok" else [c["status"]]
    up = c["server_log"]["uploads"]
    if up != c["expected_uploads"]:  # not a failure, but worth seeing (re-uploads, partial runs)
        notes.append(f"{up} uploads, expected {c['expected_uploads']}")
    return f"{c['tool']}: {', '.join(notes)}" if notes else ""


def failed_every_run(c):
    n = c.get("repeats", 1)
    return c["status"] != "ok" and (n == 1 or c["status"].endswith(f" in {n} of {n} runs"))


def ratio_rows(cells):
    by = {(c["server"], c["rtt_ms"], c["tree"], c["op"], c["tool"]): c for c in cells}
    keys = []
    for c in cells:
        k = (c["server"], c["rtt_ms"], c["tree"], c["op"])
        if k not in keys:
            keys.append(k)
    rows = []
    for k in keys:
        f = by.get(k + ("ftpsync",))
        if not f:
            continue
        row = {"key": k, "ftpsync": f, "vs": {}}
        for other in ("lftp", "rclone"):
            o = by.get(k + (other,))
            if not o:
                continue
            # No time or CPU ratio against a run that did not do the work.
            bad = any(c["timed_out"] or failed_every_run(c) for c in (f, o))
            row["vs"][other] = {
                "time": None if bad else fmt_ratio(f["wall_s"], o["wall_s"]),
                "cpu": None if bad else fmt_ratio(f["cpu_s"], o["cpu_s"]),
                "mem": fmt_ratio(f["max_rss_mb"], o["max_rss_mb"]),
                "notes": [n for n in (cell_note(f), cell_note(o)) if n],
            }
        rows.append(row)
    return rows


def round_trips(c, jobs):
    """The run's wall time in round trips and, when it uploaded files, what each upload cost its
    connection: round trips x connections in use / files ("-" at 0 ms)."""
    if not c["rtt_ms"] or c.get("timed_out"):
        return "-"
    n = c["wall_s"] * 1000 / c["rtt_ms"]
    files = c["expected_uploads"]
    return f"{n:.0f}" + (f" ({n * min(jobs, files) / files:.1f}/file)" if files else "")


def tls_versions(c):
    """TLS control connections by version and the data connections, as the server logged them."""
    t = c.get("tls")
    if not t or "control" not in t:
        return "-"
    ctrl = ", ".join(f"{k.replace('TLSv', '')} x {n}" for k, n in sorted(t["control"].items())) or "0"
    return f"{ctrl}; data {t['data']}" + (f", {t['refused']} refused" if t["refused"] else "")


def cpu_split(c):
    if c["cpu_s"] is None:
        return "?"
    return f"{c['cpu_s']:.3f} ({num(c.get('user_s'), '.3f')} + {num(c.get('sys_s'), '.3f')})"


def markdown(results):
    cells = results["cells"]
    out = []
    tools = [t for t in TOOLS if any(c["tool"] == t for c in cells)]
    reps = results["matrix"].get("repeat_0ms", 1)
    jobs = results["matrix"].get("jobs", 8)
    out.append("Ratios are ftpsync / other tool: below 1 means ftpsync used less (time, CPU, memory). "
               + (f"Cells at 0 ms are the median of {reps} runs (tools interleaved), cells through the "
                  "proxy a single run. " if reps > 1 else "")
               + "A cell whose run failed (exit code, timeout) or whose result was not an exact mirror "
               "is flagged; a timeout, or a run that failed every time, has no time or CPU ratio. Servers named `-tls` are FTPS (explicit "
               "`AUTH TLS`, TLS on every data connection, which must resume the control connection's "
               "session). CPU is user + system time of the tool and its children. Round trips: the "
               f"run's wall time divided by the RTT, and per file, that times the connections in use "
               f"({jobs}, or the number of files if fewer) divided by the files uploaded: what each "
               "upload cost its connection, logins and listings included.\n")
    hdr = "| server | RTT | tree | operation | ftpsync wall | ftpsync CPU | ftpsync round trips |"
    sep = "|---|---|---|---|---:|---:|---:|"
    for o in ("lftp", "rclone"):
        if o in tools:
            hdr += f" time /{o} | CPU /{o} | mem /{o} |"
            sep += "---:|---:|---:|"
    out += [hdr + " notes |", sep + "---|"]
    for row in ratio_rows(cells):
        server, rtt, tree, op = row["key"]
        f = row["ftpsync"]
        line = (f"| {server} | {rtt} ms | {tree} | {OP_LABEL[op]} | {f['wall_s']:.2f} s | "
                f"{num(f['cpu_s'], '.3f')} s | {round_trips(f, jobs)} |")
        notes = []
        for o in ("lftp", "rclone"):
            if o not in tools:
                continue
            v = row["vs"].get(o)
            if not v:
                line += " - | - | - |"
                continue
            line += f" {v['time'] or 'n/a'} | {v['cpu'] or 'n/a'} | {v['mem']} |"
            notes += [n for n in v["notes"] if n not in notes]
        out.append(line + f" {'; '.join(f'**{n}**' for n in notes)} |")
    out.append("")
    out.append("<details><summary>All measurements</summary>\n")
    tls = any(c.get("tls") for c in cells)
    out.append("| server | RTT | tree | operation | tool | wall s | CPU s (user + sys) | max RSS MB | round trips | "
               + ("TLS control conn. by version; data conn. | " if tls else "")
               + "uploads logged (expected) | status |")
    out.append("|---|---|---|---|---|---:|---:|---:|---:|" + ("---|" if tls else "") + "---:|---|")
    for c in cells:
        up = c["server_log"]["uploads"]
        out.append(f"| {c['server']} | {c['rtt_ms']} ms | {c['tree']} | {OP_LABEL[c['op']]} | {c['tool']} | "
                   f"{c['wall_s']:.2f} | {cpu_split(c)} | {num(c['max_rss_mb'], '.1f')} | {round_trips(c, jobs)} | "
                   + (f"{tls_versions(c)} | " if tls else "") + f"{up} ({c['expected_uploads']}) | {c['status']} |")
    out.append("\n</details>\n")
    fails = [c for c in cells if c["status"] != "ok"]
    if fails:
        out.append("Failures:\n")
        for c in fails:
            out.append(f"- {c['server']} {c['rtt_ms']} ms {c['tree']} {OP_LABEL[c['op']]} {c['tool']}: "
                       f"{c['status']}")
            for l in (c.get("stderr_tail") or [])[-3:]:
                out.append(f"  - stderr: `{l.strip()[:160]}`")
            for l in c["diff_head"][:2]:
                out.append(f"  - diff: `{l}`")
        out.append("")
    odd = [c for c in cells if c["tool"] == "ftpsync" and c.get("ftpsync_json")
           and c["ftpsync_json"].get("files_uploaded") != c["server_log"]["uploads"]]
    if odd:
        out.append("ftpsync's own count of uploads differs from the server's log:\n")
        for c in odd:
            out.append(f"- {c['server']} {c['rtt_ms']} ms {c['tree']} {OP_LABEL[c['op']]}: ftpsync says "
                       f"{c['ftpsync_json'].get('files_uploaded')}, the server logged {c['server_log']['uploads']}")
        out.append("")
    if results.get("noop"):
        out.append("NOOP round trip (python ftplib, average of 20): " + ", ".join(
            f"{n['server']} at {n['rtt_ms']} ms: {n['avg_ms']:.2f} ms" for n in results["noop"]) + ".\n")
    trees = results.get("trees", {})
    if trees:
        out.append("Trees: " + "; ".join(
            f"{k}: {v['stats']['files']} files, {v['stats']['folders']} folders, "
            f"{v['stats']['bytes'] / 1e6:.1f} MB" + (
                f" (after changes: {v['mutation']['changed']} changed, {v['mutation']['added']} added, "
                f"{v['mutation']['deleted']} deleted)" if v.get("mutation") else "")
            for k, v in trees.items()) + ".\n")
    out.append(machine_md(results))
    return "\n".join(out)


def machine_md(results):
    m = results["machine"]
    b = results.get("ftpsync_binary")
    binary = f" (binary sha256 {b['sha256']}..., built {b['built']})" if b else ""
    return (f"Run {results['started']} - {results['finished']} (UTC), command `{results['command']}`, "
            f"on {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, kernel {m['kernel']}, {m['os']}. "
            f"ftpsync {m['ftpsync']}{binary}; {m['lftp']}; {m['rclone']}; {m['vsftpd']}; {m['pure-ftpd']}"
            + "".join(f"; {m[k]}" for k in ("proftpd", "openssl") if k in m) + ".\n")


def scale_markdown(results):
    out = ["| operation | wall s | CPU s | max RSS MB | uploads logged (expected) | status |",
           "|---|---:|---:|---:|---:|---|"]
    for c in results["cells"]:
        out.append(f"| {OP_LABEL[c['op']]} | {c['wall_s']:.2f} | {num(c['cpu_s'], '.3f')} | {num(c['max_rss_mb'], '.1f')} | "
                   f"{c['server_log']['uploads']} ({c['expected_uploads']}) | {c['status']} |")
    peak = max((c["max_rss_mb"] or 0 for c in results["cells"]), default=0)
    out.append("")
    out.append(f"Peak memory {peak:.1f} MB: {'within' if peak < 150 else '**over**'} the 150 MB target.\n")
    for c in results["cells"]:
        if c["status"] != "ok":
            out.append(f"- {OP_LABEL[c['op']]}: {c['status']}")
            for l in (c.get("stderr_tail") or [])[-3:]:
                out.append(f"  - stderr: `{l.strip()[:160]}`")
            for l in c["diff_head"][:2]:
                out.append(f"  - diff: `{l}`")
    out.append(machine_md(results))
    return "\n".join(out)


def ci_markdown(results):
    """The CI redeploy cells: per server and RTT, each tool's redeploy of a fresh checkout."""
    cells = [c for c in results["cells"] if c["op"] == "ci"]
    out = ["| server | RTT | tool | wall s | CPU s | uploads logged (changed) | time / ftpsync | status |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    by = {(c["server"], c["rtt_ms"], c["tool"]): c for c in cells}
    for c in cells:
        f = by.get((c["server"], c["rtt_ms"], "ftpsync"))
        ratio = fmt_ratio(c["wall_s"], f["wall_s"]) if f and c["tool"] != "ftpsync" else ""
        out.append(f"| {c['server']} | {c['rtt_ms']} ms | {c['tool']} | {c['wall_s']:.2f} | "
                   f"{num(c['cpu_s'], '.3f')} | {c['server_log']['uploads']} ({c['expected_uploads']}) | "
                   f"{ratio} | {c['status']} |")
    out.append("")
    out.append("ftpsync runs with `--checksum` (its manifest on the server written by the first deploy); "
               "lftp (`mirror -R`) and rclone (`sync`) compare sizes and times, and every time is new "
               "in a fresh checkout. \"changed\" counts the files the 5% mutation changed or added; "
               "the uploads are counted from the server's transfer log, ftpsync's with the writes of "
               "its manifest (two: the entries of the files about to change dropped first, then the "
               "new manifest), which the mirror check leaves out.\n")
    out.append(machine_md(results))
    return "\n".join(out)


def update_doc(section, text):
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    doc = DOC.read_text() if DOC.exists() else ""
    if begin in doc and end in doc:
        pre, rest = doc.split(begin, 1)
        _, post = rest.split(end, 1)
        DOC.write_text(f"{pre}{begin}\n{text}\n{end}{post}")
        log(f"updated the {section} section of {DOC}")
    else:
        log(f"{DOC} has no {begin} ... {end} markers; not updated")


def write_json(path, data):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)

