#!/usr/bin/env python3
"""ftpsync benchmark driver (stdlib only). Run it through bench/run.sh, which installs and builds
what it needs first; see BENCHMARKS.md for the method.

Matrix: server (vsftpd, pure-ftpd; FTPS: vsftpd-tls, proftpd-tls) x round trip (0 ms direct,
N ms through examples/latency_proxy.rs) x tree (site, deep, large, seed; bench/gen_tree.py) x
tool (ftpsync, lftp, rclone, all at 8 connections) x operation (first sync to an empty folder,
rerun with nothing changed, rerun after `gen_tree.py mutate` with delete). The servers are
started and stopped by `scripts/test-servers.sh --profile bench` (bench/servers.py).

Each operation is measured (wall time; user+sys CPU of the tool and its children, from the
rusage of the GNU time process that runs it; peak RSS from GNU time's %M), then checked: `diff
-r` of the local tree against the server-side folder, and the uploads the server logged while it
ran. Results go to bench/results/latest.{json,md} (bench/report.py); a full (unreduced) run also
rewrites the tables in BENCHMARKS.md and saves bench/results/full.{json,md}.

--pull: the other direction (bench/pull.py): each tool mirrors the server's copy of the site tree
to an empty local folder, again with nothing changed, then after the server's copy changed
(default: vsftpd and pure-ftpd at 0 and 20 ms). Results go to bench/results/pull.{json,md} and the
pull section of BENCHMARKS.md.

--scale: ftpsync only, 100,000 files in 10,000 folders, to pure-ftpd at 0 ms: first sync, then a
rerun with nothing changed (wall time, peak memory; target < 150 MB). Results go to
bench/results/scale.{json,md} and the scale section of BENCHMARKS.md.
"""

import argparse
import datetime
import hashlib
import json
import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pull
from report import (
    OP_LABEL,
    TOOLS,
    aggregate,
    ci_markdown,
    fmt_ratio,
    machine_info,
    machine_md,
    markdown,
    num,
    scale_markdown,
    update_doc,
    write_json,
)
from servers import ALIASES, GROUPS, SERVERS, Proxy, Servers, die, log, noop_rtt

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
FTPSYNC = REPO / "target" / "release" / "ftpsync"
PROXY = REPO / "target" / "release" / "examples" / "latency_proxy"
GEN = BENCH / "gen_tree.py"
JOBS = 8
TREES = ["site", "deep", "large", "seed"]
OPS = ["first", "rerun", "mutate"]
# The CI redeploy cells (--ci): a first deploy, then a fresh checkout with 5% changed.
CI_OPS = ["ci-first", "ci"]
MANIFEST = ".ftpsync-manifest.json"  # ftpsync's, with --checksum


def pull_markdown(results):
    return pull.pull_markdown(results, fmt_ratio, num, machine_md)


def fresh_checkout(tree, dest, ctx):
    """`tree` copied to `dest` as a CI runner's checkout has it: every modification time new; and an
    empty state folder for ftpsync, as on a fresh runner."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(tree, dest, symlinks=True, copy_function=shutil.copy)  # copy: times not kept
    now = time.time()
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (now, now), follow_symlinks=False)
    ctx["statedir"] = ctx["statedir"].parent / f"{ctx['statedir'].name}-ci{int(now * 1000)}"
    ctx["statedir"].mkdir(parents=True, exist_ok=True)
    return dest


# --- trees -----------------------------------------------------------------------------------


def gen_version():
    m = re.search(r"^GEN_VERSION = (\d+)", GEN.read_text(), re.MULTILINE)
    return m.group(1) if m else "0"


def ensure_tree(workdir, kind, seed, mutate=True):
    """trees/<kind>-s<seed>-g<version>/{base,mutated} (cached); returns (base, mutated, mutation)."""
    d = workdir / "trees" / f"{kind}-s{seed}-g{gen_version()}"
    done = d / "done.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info.get("mutation") or not mutate:
            return d / "base", d / "mutated", info
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    log(f"generating tree {kind} (seed {seed}) in {d}")
    out = subprocess.run([sys.executable, str(GEN), "gen", kind, str(d / "base"), "--seed", str(seed)],
                         check=True, capture_output=True, text=True).stdout
    info = {"stats": json.loads(out), "mutation": None}
    if mutate:
        out = subprocess.run([sys.executable, str(GEN), "mutate", str(d / "base"), str(d / "mutated"),
                              "--seed", str(seed)], check=True, capture_output=True, text=True).stdout
        info["mutation"] = json.loads(out)
    done.write_text(json.dumps(info))
    return d / "base", d / "mutated", info


# --- running a tool --------------------------------------------------------------------------


def run_measured(argv, out_path, err_path, timeout, env=None):
    """Runs argv under GNU time in its own process group: wall time (measured here), user+sys CPU
    (rusage of the reaped GNU time process, which includes the tool's) and peak RSS of the tool and
    its children (GNU time's %M: time's own small footprint is what the tool is forked from,
    whereas python's RSS would leak into the ru_maxrss of a child forked from here)."""
    time_path = Path(str(out_path) + ".time")
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(time_path), "--"] + list(argv)
    timed_out = False
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, env=env)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            # Kill the tool (time's child) so that time still reports what it used.
            try:
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            except OSError:
                kids = []
            for k in kids:
                try:
                    os.kill(int(k), signal.SIGKILL)
                except OSError:
                    pass
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        except BaseException:  # interrupted: take the tool down with us
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            raise
        t1 = time.perf_counter()
    # CPU: what the reaped time process used, its child (the tool) included, to the microsecond
    # (GNU time prints 10 ms steps). The servers and the proxy are children too, but are only
    # reaped when stopped, so they do not count here.
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Anything the tool left behind in its group (none expected): stop it too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    exit_code = proc.returncode
    rss_kb = None
    try:
        lines = time_path.read_text().strip().splitlines()
        for l in lines[:-1]:
            m = re.search(r"terminated by signal (\d+)", l)
            if m:
                exit_code = -int(m.group(1))
            m = re.search(r"non-zero status (\d+)", l)
            if m:
                exit_code = int(m.group(1))
        rss_kb = int(lines[-1].split()[3])
    except (OSError, ValueError, IndexError):
        pass
    user = ru1.ru_utime - ru0.ru_utime
    sys_ = ru1.ru_stime - ru0.ru_stime
    return {
        "wall_s": round(t1 - t0, 3),
        "user_s": round(user, 4),
        "sys_s": round(sys_, 4),
        "cpu_s": round(user + sys_, 4),
        "max_rss_mb": round(rss_kb / 1024, 1) if rss_kb is not None else None,
        "exit_code": exit_code,
        "timed_out": timed_out,
    }


def tail(path, n=12, width=300):
    try:
        lines = Path(path).read_text("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [l[:width] for l in lines[-n:]]


def count_matching(path, pattern):
    rx = re.compile(pattern)
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return sum(1 for l in f if rx.search(l))
    except OSError:
        return 0


def tool_argv(tool, inst, local, remote_rel, ctx):
    user, pw, host, port = inst.user, inst.password, inst.host, inst.port
    if tool == "ftpsync":
        # ftpes:// for the TLS servers; their certificate is signed by the script's test CA.
        tls = ["--ca-file", inst.ca] if inst.tls else []
        checksum = ["--checksum"] if ctx.get("ci") else []
        return [str(FTPSYNC), "-j", str(JOBS), "--delete", "--json", *checksum, *tls, str(local),
                inst.url(remote_rel)]
    if tool == "lftp":
        if inst.tls:
            tls = ["set ftp:ssl-force yes",  # AUTH TLS before the login, or fail
                   "set ftp:ssl-protect-data yes",  # PROT P: TLS on the data connections too
                   f"set ssl:ca-file {inst.ca}"]
        else:
            tls = ["set ftp:ssl-allow no"]  # plain FTP like the others (pure-ftpd offers AUTH TLS)
        settings = [
            "set cmd:fail-exit yes",  # a failed mirror exits non-zero
            *tls,
            "set ftp:passive-mode on",
            "set ftp:list-options -a",  # LIST hides dotfiles otherwise (vsftpd; pure-ftpd's LIST)
            "set net:max-retries 3",  # default 1000
            "set net:timeout 30",  # default 5m
            "set net:reconnect-interval-base 2",  # default 15 s
            "set net:reconnect-interval-max 10",
        ]
        if inst.kind == "vsftpd":
            settings.append("set ftp:use-mdtm-overloaded yes")  # vsftpd sets times with MDTM t path
        script = "; ".join(settings + [
            f"open -u {user},{pw} -p {port} ftp://{host}",
            # --no-perms: ftpsync does not chmod; lftp would send SITE CHMOD after every upload.
            f"mirror -R --delete --no-perms --parallel={JOBS} {local} /{remote_rel}",
            "quit",
        ])
        return ["lftp", "-e", script]
    if tool == "rclone":
        if pw not in ctx["rclone_pass"]:
            ctx["rclone_pass"][pw] = subprocess.run(["rclone", "obscure", pw], capture_output=True, text=True,
                                                    check=True).stdout.strip()
        opts = [f"host={host}", f"port={port}", f"user={user}", f"pass={ctx['rclone_pass'][pw]}"]
        if inst.kind == "vsftpd":
            # LIST -a for dotfiles (no MLSD there anyway); MDTM to set times (vsftpd's quirk).
            opts += ["force_list_hidden=true", "writing_mdtm=true"]
        if inst.tls:
            # The certificate is checked against SSL_CERT_FILE (the test CA, see tool_env). On
            # proftpd this fails: rclone's connections share one TLS session cache, so a data
            # connection resumes another control connection's session, which proftpd refuses.
            opts.append("explicit_tls=true")
            if inst.kind == "vsftpd":
                opts.append("disable_tls13=true")  # else "tls: illegal parameter" at connect
        remote = ":ftp," + ",".join(opts) + ":" + remote_rel
        return ["rclone", "--config", str(ctx["rclone_conf"]), "sync", "--transfers", str(JOBS),
                "--checkers", str(JOBS), "--create-empty-src-dirs", str(local), remote]
    raise ValueError(tool)


def tool_env(tool, inst, ctx):
    env = dict(os.environ, XDG_STATE_HOME=str(ctx["statedir"]), HOME=str(ctx["homedir"]))
    if tool == "rclone" and inst.tls:
        env["SSL_CERT_FILE"] = inst.ca  # Go's root CAs on Linux: rclone's ftp has no CA option
    return env


def prepare_remote(inst, remote_rel):
    """A fresh, empty folder on the server, owned by the server's user."""
    pw = pwd.getpwnam(inst.user)
    path = inst.root
    for part in remote_rel.split("/"):
        path = path / part
        if not path.exists():
            path.mkdir()
            os.chown(path, pw.pw_uid, pw.pw_gid)
    server_dir = inst.root / remote_rel
    for child in list(server_dir.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return server_dir


def mirror_check(local, server_dir, ignore=()):
    excludes = [arg for name in ignore for arg in ("-x", name)]
    p = subprocess.run(["diff", "-r", "-q", "--no-dereference", *excludes, str(local), str(server_dir)],
                       capture_output=True, text=True, check=False)
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    return {"mirror_ok": p.returncode == 0 and not lines, "diff_lines": len(lines),
            "diff_head": [l.replace(str(local), "LOCAL").replace(str(server_dir), "REMOTE")[:200]
                          for l in lines[:8]]}


def judge(cell, m, err, more=()):
    """The cell's status from its run `m` and checks ("ok", or what went wrong, with `more`),
    and the tail of its stderr `err` when something did or it warned."""
    cell["stderr_warnings"] = count_matching(err, r"(?i)\b(warn|warning|error|failed|retry|retrying)\b")
    status = []
    if m["timed_out"]:
        status.append("timeout")
    elif m["exit_code"] != 0:
        status.append(f"rc={m['exit_code']}")
    if not cell["mirror_ok"]:
        status.append(f"diff({cell['diff_lines']})")
    cell["status"] = ",".join([*status, *more]) or "ok"
    if cell["status"] != "ok" or cell["stderr_warnings"]:
        cell["stderr_tail"] = tail(err)
    cell["log"] = str(err)


def run_op(ctx, inst, rtt, tree, tool, op, local, remote_rel, server_dir, expected):
    ctx["seq"] = ctx.get("seq", 0) + 1
    tag = f"{ctx['seq']:04d}-{inst.server}-r{rtt}-{tree}-{tool}-{op}"
    logs = ctx["logdir"]
    out, err = logs / f"{tag}.out", logs / f"{tag}.err"
    env = tool_env(tool, inst, ctx)
    argv = tool_argv(tool, inst, local, remote_rel, ctx)
    os.sync()  # the previous cell's writes are not flushed during this one
    offsets = inst.log_sizes()
    m = run_measured(argv, out, err, ctx["timeout"], env)
    time.sleep(0.2)  # let the server finish its log line for the last transfer
    cell = {"server": inst.server, "rtt_ms": rtt, "tree": tree, "tool": tool, "op": op, **m}
    cell["server_log"] = inst.uploads_since(offsets[0])
    cell["tls"] = inst.tls_since(offsets[1])
    cell["expected_uploads"] = expected
    # --checksum keeps its manifest in the remote folder: not a difference from the local tree.
    ignore = [MANIFEST] if ctx.get("ci") and tool == "ftpsync" else []
    cell.update(mirror_check(local, server_dir, ignore))
    if tool == "ftpsync":
        try:
            cell["ftpsync_json"] = json.loads(Path(out).read_text().strip().splitlines()[-1])
        except (ValueError, IndexError, OSError):
            cell["ftpsync_json"] = None
    judge(cell, m, err)
    up = cell["server_log"]["uploads"]
    log(f"  {tool:8s} {OP_LABEL[op]:13s} {m['wall_s']:8.2f} s  cpu {num(m['cpu_s'], '7.3f')} s  "
        f"rss {num(m['max_rss_mb'], '7.1f')} MB  uploads {up:5d} (expected {expected})  {cell['status']}")
    if cell["status"] != "ok":
        for l in cell.get("stderr_tail", [])[-4:]:
            log(f"      | {l}")
        for l in cell["diff_head"][:3]:
            log(f"      | {l}")
    return cell


# --- main ------------------------------------------------------------------------------------


def parse_list(value, allowed, what, aliases=None, groups=None):
    items = []
    for v in (v.strip() for v in value.split(",")):
        v = (aliases or {}).get(v, v)
        items += [x for x in (groups or {}).get(v, [v] if v else []) if x not in items]
    bad = [v for v in items if v not in allowed]
    if bad:
        die(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main():
    global FTPSYNC, PROXY
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced matrix: site tree, vsftpd, RTT 0,20")
    ap.add_argument("--trees", help=f"comma list of {','.join(TREES)} (default: all)")
    ap.add_argument("--skip-large", action="store_true", help="leave out the large tree (4 x 128 MiB)")
    ap.add_argument("--servers", help=f"comma list of {','.join(SERVERS)} (default: all), or "
                                      "plain (the first two) or tls (the FTPS ones)")
    ap.add_argument("--rtt", help="comma list of round trips in ms, even numbers (default: 0,20)")
    ap.add_argument("--tools", help=f"comma list of {','.join(TOOLS)} (default: all)")
    ap.add_argument("--scale", action="store_true", help="only the scale run (ftpsync, 100,000 files)")
    ap.add_argument("--ci", action="store_true",
                    help="only the CI redeploy cells: a deploy of the site tree, then a fresh checkout "
                         "of it with 5%% changed (every modification time new, ftpsync's state folder "
                         "empty) deployed again; ftpsync with --checksum (default: vsftpd at 20 ms)")
    ap.add_argument("--pull", action="store_true",
                    help="only the pull cells: each tool mirrors the server's copy of the site tree to an "
                         "empty local folder, then with nothing changed, then after changes "
                         "(default: vsftpd and pure-ftpd, 0 and 20 ms)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each 0 ms cell, the median is reported (default 3); cells "
                         "through the proxy run once (latency-bound, steadier)")
    ap.add_argument("--seed", type=int, default=1, help="tree generator seed (default 1)")
    ap.add_argument("--timeout-min", type=float, default=15, help="limit per tool run (default 15)")
    ap.add_argument("--workdir", default="/var/tmp/ftpsync-bench", help="trees, logs, tool state")
    ap.add_argument("--keep-remote", action="store_true", help="leave the uploaded folders on the servers")
    ap.add_argument("--update-doc", action="store_true", help="rewrite BENCHMARKS.md even for a reduced run")
    ap.add_argument("--no-doc", action="store_true", help="never rewrite BENCHMARKS.md")
    ap.add_argument("--render", metavar="JSON",
                    help="only print the Markdown of an earlier results file (with --update-doc: "
                         "also put it in BENCHMARKS.md)")
    ap.add_argument("--serve", action="store_true",
                    help="only start the servers (and the proxy at the first --rtt above 0), print their "
                         "URLs and wait until interrupted: for trying things by hand")
    ap.add_argument("--command", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.render:
        results = json.loads(Path(a.render).read_text())
        mode = results.get("mode")
        render, section = {"scale": (scale_markdown, "bench-scale"),
                           "ci": (ci_markdown, "bench-ci"),
                           "pull": (pull_markdown, "bench-pull")}.get(mode, (markdown, "bench-results"))
        md = render(results)
        print(md)
        if a.update_doc:
            update_doc(section, md)
        return

    def stop_on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop_on_signal)  # so that the servers and the proxy get stopped

    if os.geteuid() != 0:
        die("must run as root (starts FTP servers, creates users)")
    for path in (FTPSYNC, PROXY):
        if not path.exists():
            die(f"{path} is missing: run bench/run.sh (it builds and installs what is needed)")

    reduced = bool(a.quick or a.trees or a.skip_large or a.servers or a.rtt or a.tools)
    trees = parse_list(a.trees, TREES, "tree") if a.trees else (["site"] if a.quick else list(TREES))
    if a.skip_large:
        trees = [t for t in trees if t != "large"]
    servers = parse_list(a.servers, list(SERVERS), "server", ALIASES, GROUPS) if a.servers else (
        ["vsftpd"] if a.quick else list(SERVERS))
    tools = parse_list(a.tools, TOOLS, "tool") if a.tools else list(TOOLS)
    try:
        rtts = [int(x) for x in (a.rtt or "0,20").split(",") if x.strip()]
    except ValueError:
        die("--rtt takes whole milliseconds, e.g. 0,20")
    if any(r < 0 or r % 2 for r in rtts):
        die("--rtt values must be even (the proxy delays each direction by RTT/2 whole ms)")
    if a.scale:
        servers, rtts, tools = ["pure-ftpd"], [0], ["ftpsync"]
    if a.pull:
        trees = trees if a.trees else ["site"]
        servers = servers if a.servers else ["vsftpd", "pure-ftpd"]
    if a.ci:
        trees = ["site"]
        servers = servers if a.servers else ["vsftpd"]
        rtts = rtts if a.rtt else [20]

    workdir = Path(a.workdir)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    # Others may rebuild target/release/ftpsync while this runs: every cell uses one snapshot.
    bindir = workdir / "bin" / run_id
    bindir.mkdir(parents=True, exist_ok=True)
    for name, src in (("ftpsync", FTPSYNC), ("latency_proxy", PROXY)):
        shutil.copy2(src, bindir / name)
    ftpsync_built = datetime.datetime.fromtimestamp(FTPSYNC.stat().st_mtime, datetime.UTC)
    FTPSYNC, PROXY = bindir / "ftpsync", bindir / "latency_proxy"
    ftpsync_sha = hashlib.sha256(FTPSYNC.read_bytes()).hexdigest()[:12]
    ctx = {
        "timeout": a.timeout_min * 60,
        "logdir": workdir / "logs" / run_id,
        "statedir": workdir / "state" / run_id,  # ftpsync's XDG_STATE_HOME: a fresh record per run
        "homedir": workdir / "home",  # HOME for lftp/rclone (no user config leaks in)
        "rclone_conf": workdir / "rclone.conf",
        "rclone_pass": {},  # password -> rclone obscure'd
        "ci": a.ci,
        "workdir": workdir,
    }
    for d in (ctx["logdir"], ctx["statedir"], ctx["homedir"]):
        d.mkdir(parents=True, exist_ok=True)
    ctx["rclone_conf"].write_text("")
    RESULTS.mkdir(parents=True, exist_ok=True)

    mode = "scale" if a.scale else ("ci" if a.ci else ("pull" if a.pull else ("reduced" if reduced else "full")))
    started = datetime.datetime.now(datetime.UTC)
    results = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "finished": None,
        "command": a.command or "bench/bench.py " + " ".join(sys.argv[1:]),
        "mode": mode,
        "matrix": {"servers": servers, "rtt_ms": rtts, "trees": ["scale"] if a.scale else trees,
                   "tools": tools, "jobs": JOBS, "repeat_0ms": 1 if a.scale else a.repeat},
        "machine": None,  # once the servers are installed
        "ftpsync_binary": {"sha256": ftpsync_sha, "built": ftpsync_built.strftime("%Y-%m-%d %H:%M:%S UTC")},
        "noop": [],
        "trees": {},
        "cells": [],  # one per server x RTT x tree x tool x operation (median of the runs)
        "runs": [],  # every single run
    }
    name = mode if mode in ("scale", "ci", "pull") else "latest"
    out_json, out_md = RESULTS / f"{name}.json", RESULTS / f"{name}.md"

    # Trees first (generation is not part of any measurement).
    tree_paths = {}
    for t in (["scale"] if a.scale else trees):
        base, mutated, info = ensure_tree(workdir, t, a.seed, mutate=not a.scale)
        tree_paths[t] = (base, mutated, info)
        results["trees"][t] = info

    srv = Servers(servers, rtts)
    proxy = None
    try:
        srv.start()  # scripts/test-servers.sh --profile bench: installs what is missing, starts
        results["machine"] = machine_info()
        log(f"servers up: {', '.join(f'{i.name} {i.host}:{i.port}' for i in srv.instances.values())}")
        if a.serve:
            if any(r > 0 for r in rtts):
                proxy = Proxy(PROXY, next(r for r in rtts if r > 0), srv.proxy_ports())
                proxy.start()
            for inst in srv.instances.values():
                ca = f", CA {inst.ca}" if inst.tls else ""
                log(f"{inst.server}: {inst.url('')} (files in {inst.root}{ca})")
            log("serving until interrupted (Ctrl-C)")
            while True:
                signal.pause()

        for rtt in rtts:
            if proxy:
                proxy.stop()
                proxy = None
            if rtt > 0:
                proxy = Proxy(PROXY, rtt, srv.proxy_ports())
                proxy.start()
            for server in servers:
                inst = srv.get(server, rtt)
                n = noop_rtt(inst)
                n.update(server=server, rtt_ms=rtt)
                results["noop"].append(n)
                log(f"NOOP round trip {server} at {rtt} ms ({inst.host}:{inst.port}): avg {n['avg_ms']:.2f} ms "
                    f"(min {n['min_ms']:.2f}, max {n['max_ms']:.2f}, {n['samples']} samples)")
                for tree, (base, mutated, info) in tree_paths.items():
                    nfiles = info["stats"]["files"]
                    reps = 1 if (a.scale or rtt > 0) else a.repeat
                    if a.pull:
                        runs = pull.pull_cells(sys.modules[__name__], ctx, inst, rtt, tree, base, mutated,
                                               info, tools, reps)
                        results["runs"] += [c for cells in runs.values() for c in cells]
                        results["cells"] += [aggregate(runs[(t, op)]) for t in tools for op in pull.PULL_OPS]
                        write_json(out_json, results)
                        continue
                    ops = ["first", "rerun"] if a.scale else (CI_OPS if a.ci else OPS)
                    runs = {}
                    for rep in range(reps):
                        for tool in tools:
                            log(f"{server}, {rtt} ms, {tree}, {tool}"
                                + (f" (run {rep + 1}/{reps})" if reps > 1 else ""))
                            remote_rel = f"bench/{server}/r{rtt}/{tree}/{tool}"
                            server_dir = prepare_remote(inst, remote_rel)
                            for op in ops:
                                local = {"mutate": mutated, "ci": None}.get(op, base)
                                if op == "ci":
                                    local = fresh_checkout(mutated, workdir / "ci-checkout", ctx)
                                changes = info["mutation"]["changed"] + info["mutation"]["added"]
                                expected = {"first": nfiles, "ci-first": nfiles, "rerun": 0,
                                            "mutate": changes, "ci": changes}[op]
                                cell = run_op(ctx, inst, rtt, tree, tool, op, local, remote_rel, server_dir, expected)
                                runs.setdefault((tool, op), []).append(cell)
                                results["runs"].append(cell)
                                write_json(out_json, results)
                            if not a.keep_remote:
                                shutil.rmtree(server_dir, ignore_errors=True)
                    for tool in tools:
                        for op in ops:
                            results["cells"].append(aggregate(runs[(tool, op)]))
                    write_json(out_json, results)
    finally:
        if proxy:
            proxy.stop()
        srv.stop()
        shutil.rmtree(bindir, ignore_errors=True)

    results["finished"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    write_json(out_json, results)
    md = {"scale": scale_markdown, "ci": ci_markdown, "pull": pull_markdown}.get(mode, markdown)(results)
    out_md.write_text(md + "\n")
    print()
    print(md)
    log(f"results: {out_json}, {out_md}; tool logs: {ctx['logdir']}")
    if not a.no_doc and (a.update_doc or not reduced or mode in ("scale", "ci", "pull")):
        update_doc({"scale": "bench-scale", "ci": "bench-ci", "pull": "bench-pull"}.get(mode, "bench-results"), md)
        if mode not in ("scale", "ci", "pull"):  # what BENCHMARKS.md shows, kept apart from later reduced runs
            shutil.copy(out_json, RESULTS / "full.json")
            shutil.copy(out_md, RESULTS / "full.md")
            log(f"also saved as {RESULTS / 'full.json'} and full.md")


if __name__ == "__main__":
    main()
