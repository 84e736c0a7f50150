#!/usr/bin/env python3
"""ftpsync benchmark driver (stdlib only). Run it through bench/run.sh, which installs and builds
what it needs first; see BENCHMARKS.md for the method.

Matrix: server (vsftpd, pure-ftpd) x round trip (0 ms direct, N ms through
examples/latency_proxy.rs) x tree (site, deep, large, seed; bench/gen_tree.py) x tool (ftpsync,
lftp, rclone, all at 8 connections) x operation (first sync to an empty folder, rerun with
nothing changed, rerun after `gen_tree.py mutate` with delete).

Each operation is measured (wall time; user+sys CPU of the tool and its children, from the
rusage of the GNU time process that runs it; peak RSS from GNU time's %M), then checked: `diff -r` of the local tree against the server-side folder, and the
uploads the server logged while it ran. Results go to bench/results/latest.{json,md}; a full
(unreduced) run also rewrites the tables in BENCHMARKS.md and saves bench/results/full.{json,md}.

--scale: ftpsync only, 100,000 files in 10,000 folders, to pure-ftpd at 0 ms: first sync, then a
rerun with nothing changed (wall time, peak memory; target < 150 MB). Results go to
bench/results/scale.{json,md} and the scale section of BENCHMARKS.md.
"""

import argparse
import datetime
import ftplib
import hashlib
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
DOC = REPO / "BENCHMARKS.md"
FTPSYNC = REPO / "target" / "release" / "ftpsync"
PROXY = REPO / "target" / "release" / "examples" / "latency_proxy"
GEN = BENCH / "gen_tree.py"

CONF_DIR = Path("/opt/ftpsync-bench")  # server configs, pid files, transfer logs
SRV_DIR = Path("/srv/ftpsync-bench")  # server roots (one per server kind)
VS_BIN = "/usr/sbin/vsftpd"
PURE_BIN = "/opt/ftpsync-test/pure-ftpd/usr/sbin/pure-ftpd"  # unpacked by scripts/test-servers.sh
PASSWORD = "ftpsync-test-pw"
PROXY_ADDR = "127.0.0.2"
JOBS = 8

# kind -> user, root, (control port, passive lo, passive hi) for the direct and proxied instance.
# The proxied instance advertises PROXY_ADDR in its PASV replies; the proxy listens there on the
# same ports and forwards to 127.0.0.1.
SERVERS = {
    "vsftpd": {
        "user": "ftpsync-bench-vs",
        "root": SRV_DIR / "vsftpd",
        "direct": (2221, 31000, 31099),
        "proxied": (2231, 31100, 31199),
    },
    "pure-ftpd": {
        "user": "ftpsync-bench-pure",
        "root": SRV_DIR / "pureftpd",
        "direct": (2222, 31200, 31599),
        "proxied": (2232, 31600, 31999),
    },
}
TREES = ["site", "deep", "large", "seed"]
TOOLS = ["ftpsync", "lftp", "rclone"]
OPS = ["first", "rerun", "mutate"]
OP_LABEL = {"first": "first sync", "rerun": "no change", "mutate": "after changes"}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


# --- servers ---------------------------------------------------------------------------------


def ensure_user(name, home):
    home.mkdir(parents=True, exist_ok=True)
    try:
        pw = pwd.getpwnam(name)
        if pw.pw_dir != str(home) or pw.pw_shell != "/bin/bash":
            subprocess.run(["usermod", "--home", str(home), "--shell", "/bin/bash", name], check=True)
    except KeyError:
        # /bin/bash: vsftpd's PAM stack (pam_shells) and pure-ftpd's unix auth refuse nologin.
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/bash",
                        "--user-group", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n", text=True, check=True)
    pw = pwd.getpwnam(name)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o755)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def banner_ok(host, port):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(4).startswith(b"220")
    except OSError:
        return False


def kill_stale(pidfile, needle):
    """Stop a process a previous bench run started (and left behind), by its recorded pid."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pidfile.unlink(missing_ok=True)
        return
    if needle in cmdline:
        log(f"stopping a leftover process of an earlier run (pid {pid}: {cmdline.strip()[:80]})")
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)


def descendants(root):
    """Pids of all processes below `root` (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Daemon:
    """A process we start in its own process group and stop by that group's id."""

    def __init__(self, name, argv, env=None):
        self.name, self.argv, self.env = name, argv, env
        self.pidfile = CONF_DIR / f"{name}.pid"
        self.out = CONF_DIR / f"{name}.out"
        self.proc = None

    def start(self):
        kill_stale(self.pidfile, Path(self.argv[0]).name)
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True, env=self.env)
        self.pidfile.write_text(f"{self.proc.pid}\n")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # vsftpd's sessions leave the process group: stop the whole tree of processes.
            for pid in descendants(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
        self.pidfile.unlink(missing_ok=True)
        self.proc = None


class Instance:
    """One benchmark FTP server instance (kind x direct/proxied)."""

    def __init__(self, kind, mode):
        d = SERVERS[kind]
        self.kind, self.mode = kind, mode
        self.user, self.root = d["user"], d["root"]
        self.port, self.lo, self.hi = d[mode]
        self.host = "127.0.0.1" if mode == "direct" else PROXY_ADDR
        self.name = f"{kind}-{mode}"
        self.xferlog = CONF_DIR / f"{self.name}-xfer.log"
        self.daemon = None

    def start(self):
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        if self.kind == "vsftpd":
            empty = CONF_DIR / "vsftpd-empty"
            empty.mkdir(exist_ok=True)
            os.chmod(empty, 0o755)
            conf = CONF_DIR / f"{self.name}.conf"
            lines = [
                "# Written by bench/bench.py: ftpsync benchmark server (loopback only).",
                "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={self.port}",
                "background=NO", "seccomp_sandbox=NO", "anonymous_enable=NO", "local_enable=YES",
                "write_enable=YES", "local_umask=022", "chroot_local_user=YES",
                "allow_writeable_chroot=YES", "pasv_enable=YES", f"pasv_min_port={self.lo}",
                f"pasv_max_port={self.hi}", f"secure_chroot_dir={empty}", "pam_service_name=vsftpd",
                "userlist_enable=NO", "xferlog_enable=YES", "dual_log_enable=YES",
                "xferlog_std_format=YES", f"xferlog_file={self.xferlog}",
                f"vsftpd_log_file={CONF_DIR / (self.name + '.log')}", "max_clients=0", "max_per_ip=0",
                "mdtm_write=YES", "use_localtime=NO",
            ]
            if self.mode == "proxied":
                lines.append(f"pasv_address={PROXY_ADDR}")
            conf.write_text("\n".join(lines) + "\n")
            argv = [VS_BIN, str(conf)]
            env = None
        else:
            # As scripts/test-servers.sh, with -c/-C at half the passive range (pure-ftpd's cap).
            half = (self.hi - self.lo + 1) // 2
            argv = [PURE_BIN, "-S", f"127.0.0.1,{self.port}", "-l", "unix", "-E", "-H", "-A",
                    "-c", str(half), "-C", str(half), "-p", f"{self.lo}:{self.hi}", "-u", "1",
                    "-O", f"clf:{self.xferlog}"]
            if self.mode == "proxied":
                argv += ["-P", PROXY_ADDR]
            env = dict(os.environ, TZ="UTC")
        self.daemon = Daemon(self.name, argv, env)
        if port_open("127.0.0.1", self.port):
            kill_stale(self.daemon.pidfile, Path(argv[0]).name)
            if port_open("127.0.0.1", self.port):
                die(f"port {self.port} is taken by another program; cannot start {self.name}")
        self.daemon.start()
        for _ in range(50):
            if banner_ok("127.0.0.1", self.port):
                return
            if not self.daemon.alive():
                break
            time.sleep(0.2)
        die(f"{self.name} did not start; see {self.daemon.out}")

    def stop(self):
        if self.daemon:
            self.daemon.stop()

    def log_size(self):
        try:
            return self.xferlog.stat().st_size
        except OSError:
            return 0

    def uploads_since(self, offset):
        """Uploads the server logged from byte `offset` of its transfer log on."""
        try:
            with open(self.xferlog, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        n = ok = nbytes = 0
        paths = set()
        for line in text.splitlines():
            if self.kind == "vsftpd":
                # xferlog: 5 date fields, secs, host, bytes, name..., type, flag, DIRECTION, mode,
                # user, service, auth, auth-user, STATUS (name may contain spaces: count from the end)
                tok = line.split()
                if len(tok) < 18 or tok[-7] != "i":
                    continue
                n += 1
                ok += tok[-1] == "c"
                nbytes += int(tok[7]) if tok[7].isdigit() else 0
                paths.add(" ".join(tok[8:-9]))
            else:
                m = re.search(r'"PUT (.*)" (\d+) (\d+)\s*$', line)
                if not m:
                    continue
                n += 1
                ok += m.group(2) == "200"
                nbytes += int(m.group(3))
                paths.add(m.group(1))
        return {"uploads": n, "complete": ok, "bytes": nbytes, "distinct_paths": len(paths)}


class Proxy:
    def __init__(self, delay_ms):
        ports = []
        for d in SERVERS.values():
            port, lo, hi = d["proxied"]
            ports.append(f"{port},{lo}-{hi}")
        self.delay_ms = delay_ms
        self.daemon = Daemon("latency_proxy", [str(PROXY), "--listen", PROXY_ADDR, "--target", "127.0.0.1",
                                               "--ports", ",".join(ports), "--delay-ms", str(delay_ms)])

    def start(self):
        if port_open(PROXY_ADDR, SERVERS["vsftpd"]["proxied"][0]):
            kill_stale(self.daemon.pidfile, "latency_proxy")
        self.daemon.start()
        port = SERVERS["vsftpd"]["proxied"][0]
        for _ in range(50):
            if port_open(PROXY_ADDR, port):
                return
            if not self.daemon.alive():
                break
            time.sleep(0.1)
        die(f"latency_proxy did not start; see {self.daemon.out}")

    def stop(self):
        self.daemon.stop()


def noop_rtt(inst, n=20):
    f = ftplib.FTP()
    f.connect(inst.host, inst.port, timeout=15)
    f.login(inst.user, PASSWORD)
    f.voidcmd("NOOP")
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f.voidcmd("NOOP")
        ts.append((time.perf_counter() - t) * 1000)
    f.quit()
    return {"avg_ms": round(sum(ts) / len(ts), 2), "min_ms": round(min(ts), 2), "max_ms": round(max(ts), 2),
            "samples": n}


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


def num(v, fmt):
    return "?" if v is None else format(v, fmt)


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
    user, host, port = inst.user, inst.host, inst.port
    if tool == "ftpsync":
        url = f"ftp://{user}:{PASSWORD}@{host}:{port}/{remote_rel}"
        return [str(FTPSYNC), "-j", str(JOBS), "--delete", "--json", str(local), url]
    if tool == "lftp":
        settings = [
            "set cmd:fail-exit yes",  # a failed mirror exits non-zero
            "set ftp:ssl-allow no",  # plain FTP like the others (pure-ftpd offers AUTH TLS, no cert)
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
            f"open -u {user},{PASSWORD} -p {port} ftp://{host}",
            # --no-perms: ftpsync does not chmod; lftp would send SITE CHMOD after every upload.
            f"mirror -R --delete --no-perms --parallel={JOBS} {local} /{remote_rel}",
            "quit",
        ])
        return ["lftp", "-e", script]
    if tool == "rclone":
        opts = [f"host={host}", f"port={port}", f"user={user}", f"pass={ctx['rclone_pass']}"]
        if inst.kind == "vsftpd":
            # LIST -a for dotfiles (no MLSD there anyway); MDTM to set times (vsftpd's quirk).
            opts += ["force_list_hidden=true", "writing_mdtm=true"]
        remote = ":ftp," + ",".join(opts) + ":" + remote_rel
        return ["rclone", "--config", str(ctx["rclone_conf"]), "sync", "--transfers", str(JOBS),
                "--checkers", str(JOBS), "--create-empty-src-dirs", str(local), remote]
    raise ValueError(tool)


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


def mirror_check(local, server_dir):
    p = subprocess.run(["diff", "-r", "-q", "--no-dereference", str(local), str(server_dir)],
                       capture_output=True, text=True, check=False)
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    return {"mirror_ok": p.returncode == 0 and not lines, "diff_lines": len(lines),
            "diff_head": [l.replace(str(local), "LOCAL").replace(str(server_dir), "REMOTE")[:200]
                          for l in lines[:8]]}


def run_op(ctx, inst, rtt, tree, tool, op, local, remote_rel, server_dir, expected):
    ctx["seq"] = ctx.get("seq", 0) + 1
    tag = f"{ctx['seq']:04d}-{inst.kind}-r{rtt}-{tree}-{tool}-{op}"
    logs = ctx["logdir"]
    out, err = logs / f"{tag}.out", logs / f"{tag}.err"
    env = dict(os.environ, XDG_STATE_HOME=str(ctx["statedir"]), HOME=str(ctx["homedir"]))
    argv = tool_argv(tool, inst, local, remote_rel, ctx)
    os.sync()  # the previous cell's writes are not flushed during this one
    offset = inst.log_size()
    m = run_measured(argv, out, err, ctx["timeout"], env)
    time.sleep(0.2)  # let the server finish its log line for the last transfer
    cell = {"server": inst.kind, "rtt_ms": rtt, "tree": tree, "tool": tool, "op": op, **m}
    cell["server_log"] = inst.uploads_since(offset)
    cell["expected_uploads"] = expected
    cell.update(mirror_check(local, server_dir))
    if tool == "ftpsync":
        try:
            cell["ftpsync_json"] = json.loads(Path(out).read_text().strip().splitlines()[-1])
        except (ValueError, IndexError, OSError):
            cell["ftpsync_json"] = None
    cell["stderr_warnings"] = count_matching(err, r"(?i)\b(warn|warning|error|failed|retry|retrying)\b")
    status = []
    if m["timed_out"]:
        status.append("timeout")
    elif m["exit_code"] != 0:
        status.append(f"rc={m['exit_code']}")
    if not cell["mirror_ok"]:
        status.append(f"diff({cell['diff_lines']})")
    cell["status"] = ",".join(status) or "ok"
    if cell["status"] != "ok" or cell["stderr_warnings"]:
        cell["stderr_tail"] = tail(err)
    cell["log"] = str(err)
    up = cell["server_log"]["uploads"]
    log(f"  {tool:8s} {OP_LABEL[op]:13s} {m['wall_s']:8.2f} s  cpu {num(m['cpu_s'], '7.3f')} s  "
        f"rss {num(m['max_rss_mb'], '7.1f')} MB  uploads {up:5d} (expected {expected})  {cell['status']}")
    if cell["status"] != "ok":
        for l in cell.get("stderr_tail", [])[-4:]:
            log(f"      | {l}")
        for l in cell["diff_head"][:3]:
            log(f"      | {l}")
    return cell


# --- reports ---------------------------------------------------------------------------------


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
            timeouts = [c["tool"] for c in (f, o) if c["timed_out"]]
            row["vs"][other] = {
                "time": None if timeouts else fmt_ratio(f["wall_s"], o["wall_s"]),
                "cpu": None if timeouts else fmt_ratio(f["cpu_s"], o["cpu_s"]),
                "mem": fmt_ratio(f["max_rss_mb"], o["max_rss_mb"]),
                "notes": [n for n in (cell_note(f), cell_note(o)) if n],
            }
        rows.append(row)
    return rows


def markdown(results):
    cells = results["cells"]
    out = []
    tools = [t for t in TOOLS if any(c["tool"] == t for c in cells)]
    reps = results["matrix"].get("repeat_0ms", 1)
    out.append("Ratios are ftpsync / other tool: below 1 means ftpsync used less (time, CPU, memory). "
               + (f"Cells at 0 ms are the median of {reps} runs (tools interleaved), cells through the "
                  "proxy a single run. " if reps > 1 else "")
               + "A cell whose run failed (exit code, timeout) or whose result was not an exact mirror "
               "is flagged; a timeout has no time ratio.\n")
    hdr = "| server | RTT | tree | operation | ftpsync wall |"
    sep = "|---|---|---|---|---:|"
    for o in ("lftp", "rclone"):
        if o in tools:
            hdr += f" time /{o} | CPU /{o} | mem /{o} |"
            sep += "---:|---:|---:|"
    out += [hdr + " notes |", sep + "---|"]
    for row in ratio_rows(cells):
        server, rtt, tree, op = row["key"]
        f = row["ftpsync"]
        line = f"| {server} | {rtt} ms | {tree} | {OP_LABEL[op]} | {f['wall_s']:.2f} s |"
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
    out.append("| server | RTT | tree | operation | tool | wall s | CPU s | max RSS MB | uploads logged "
               "(expected) | status |")
    out.append("|---|---|---|---|---|---:|---:|---:|---:|---|")
    for c in cells:
        up = c["server_log"]["uploads"]
        out.append(f"| {c['server']} | {c['rtt_ms']} ms | {c['tree']} | {OP_LABEL[c['op']]} | {c['tool']} | "
                   f"{c['wall_s']:.2f} | {num(c['cpu_s'], '.3f')} | {num(c['max_rss_mb'], '.1f')} | {up} ({c['expected_uploads']}) | "
                   f"{c['status']} |")
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
            f"ftpsync {m['ftpsync']}{binary}; {m['lftp']}; {m['rclone']}; {m['vsftpd']}; {m['pure-ftpd']}.\n")


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


# --- main ------------------------------------------------------------------------------------


def parse_list(value, allowed, what):
    items = [v.strip() for v in value.split(",") if v.strip()]
    items = ["pure-ftpd" if v in ("pureftpd", "pure") else v for v in items]
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
    ap.add_argument("--servers", help="comma list of vsftpd,pure-ftpd (default: both)")
    ap.add_argument("--rtt", help="comma list of round trips in ms, even numbers (default: 0,20)")
    ap.add_argument("--tools", help=f"comma list of {','.join(TOOLS)} (default: all)")
    ap.add_argument("--scale", action="store_true", help="only the scale run (ftpsync, 100,000 files)")
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
        is_scale = results.get("mode") == "scale"
        md = scale_markdown(results) if is_scale else markdown(results)
        print(md)
        if a.update_doc:
            update_doc("bench-scale" if is_scale else "bench-results", md)
        return

    def stop_on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop_on_signal)  # so that the servers and the proxy get stopped

    if os.geteuid() != 0:
        die("must run as root (starts FTP servers, creates users)")
    for path in (FTPSYNC, PROXY, Path(PURE_BIN), Path(VS_BIN)):
        if not path.exists():
            die(f"{path} is missing: run bench/run.sh (it builds and installs what is needed)")

    reduced = bool(a.quick or a.trees or a.skip_large or a.servers or a.rtt or a.tools)
    trees = parse_list(a.trees, TREES, "tree") if a.trees else (["site"] if a.quick else list(TREES))
    if a.skip_large:
        trees = [t for t in trees if t != "large"]
    servers = parse_list(a.servers, list(SERVERS), "server") if a.servers else (
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
    }
    for d in (ctx["logdir"], ctx["statedir"], ctx["homedir"]):
        d.mkdir(parents=True, exist_ok=True)
    ctx["rclone_conf"].write_text("")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "rclone" in tools:
        ctx["rclone_pass"] = subprocess.run(["rclone", "obscure", PASSWORD], capture_output=True, text=True,
                                            check=True).stdout.strip()

    started = datetime.datetime.now(datetime.UTC)
    results = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "finished": None,
        "command": a.command or "bench/bench.py " + " ".join(sys.argv[1:]),
        "mode": "scale" if a.scale else ("reduced" if reduced else "full"),
        "matrix": {"servers": servers, "rtt_ms": rtts, "trees": ["scale"] if a.scale else trees,
                   "tools": tools, "jobs": JOBS, "repeat_0ms": 1 if a.scale else a.repeat},
        "machine": machine_info(),
        "ftpsync_binary": {"sha256": ftpsync_sha, "built": ftpsync_built.strftime("%Y-%m-%d %H:%M:%S UTC")},
        "noop": [],
        "trees": {},
        "cells": [],  # one per server x RTT x tree x tool x operation (median of the runs)
        "runs": [],  # every single run
    }
    out_json = RESULTS / ("scale.json" if a.scale else "latest.json")
    out_md = RESULTS / ("scale.md" if a.scale else "latest.md")

    # Trees first (generation is not part of any measurement).
    tree_paths = {}
    for t in (["scale"] if a.scale else trees):
        base, mutated, info = ensure_tree(workdir, t, a.seed, mutate=not a.scale)
        tree_paths[t] = (base, mutated, info)
        results["trees"][t] = info

    for kind in servers:
        ensure_user(SERVERS[kind]["user"], SERVERS[kind]["root"])
    instances = {}
    proxy = None
    try:
        for kind in servers:
            if any(r == 0 for r in rtts):
                instances[(kind, "direct")] = Instance(kind, "direct")
                instances[(kind, "direct")].start()
            if any(r > 0 for r in rtts):
                instances[(kind, "proxied")] = Instance(kind, "proxied")
                instances[(kind, "proxied")].start()
        log(f"servers up: {', '.join(f'{i.name} 127.0.0.1:{i.port}' for i in instances.values())}")
        if a.serve:
            if any(r > 0 for r in rtts):
                proxy = Proxy(next(r for r in rtts if r > 0) // 2)
                proxy.start()
            for (kind, _mode), inst in instances.items():
                user = SERVERS[kind]["user"]
                log(f"{kind}: ftp://{user}:{PASSWORD}@{inst.host}:{inst.port}/ (files in {SERVERS[kind]['root']})")
            log("serving until interrupted (Ctrl-C)")
            while True:
                signal.pause()

        for rtt in rtts:
            if proxy:
                proxy.stop()
                proxy = None
            if rtt > 0:
                proxy = Proxy(rtt // 2)
                proxy.start()
            for kind in servers:
                inst = instances[(kind, "direct" if rtt == 0 else "proxied")]
                n = noop_rtt(inst)
                n.update(server=kind, rtt_ms=rtt)
                results["noop"].append(n)
                log(f"NOOP round trip {kind} at {rtt} ms ({inst.host}:{inst.port}): avg {n['avg_ms']:.2f} ms "
                    f"(min {n['min_ms']:.2f}, max {n['max_ms']:.2f}, {n['samples']} samples)")
                for tree, (base, mutated, info) in tree_paths.items():
                    nfiles = info["stats"]["files"]
                    reps = 1 if (a.scale or rtt > 0) else a.repeat
                    ops = ["first", "rerun"] if a.scale else OPS
                    runs = {}
                    for rep in range(reps):
                        for tool in tools:
                            log(f"{kind}, {rtt} ms, {tree}, {tool}" + (f" (run {rep + 1}/{reps})" if reps > 1 else ""))
                            remote_rel = f"bench/r{rtt}/{tree}/{tool}"
                            server_dir = prepare_remote(inst, remote_rel)
                            for op in ops:
                                local = mutated if op == "mutate" else base
                                expected = {"first": nfiles, "rerun": 0}.get(op) or (
                                    info["mutation"]["changed"] + info["mutation"]["added"] if op == "mutate" else 0)
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
        for inst in instances.values():
            inst.stop()
        shutil.rmtree(bindir, ignore_errors=True)

    results["finished"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    write_json(out_json, results)
    md = scale_markdown(results) if a.scale else markdown(results)
    out_md.write_text(md + "\n")
    print()
    print(md)
    log(f"results: {out_json}, {out_md}; tool logs: {ctx['logdir']}")
    if not a.no_doc and (a.update_doc or not reduced or a.scale):
        update_doc("bench-scale" if a.scale else "bench-results", md)
        if not a.scale:  # what BENCHMARKS.md shows, kept apart from later reduced runs
            shutil.copy(out_json, RESULTS / "full.json")
            shutil.copy(out_md, RESULTS / "full.md")
            log(f"also saved as {RESULTS / 'full.json'} and full.md")


if __name__ == "__main__":
    main()
