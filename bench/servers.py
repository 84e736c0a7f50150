"""The benchmark's FTP servers and latency proxy.

The servers are configured, started and stopped by `scripts/test-servers.sh --profile bench` (the
same settings as the test servers, other ports, users and roots); this module only asks it for
the instances a run needs and reads back where they are from its env file. The latency proxy
(examples/latency_proxy.rs) is started here.
"""

import ftplib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "test-servers.sh"
ENV_FILE = Path("/opt/ftpsync-bench/servers.env")  # written by the script's bench profile
PROXY_ADDR = "127.0.0.2"  # where the proxied instances advertise their passive ports

# Benchmark server name -> the script's instance (NAME; NAME-proxied behind the proxy) and the
# server software (for the tools' per-server settings and the transfer log's format).
SERVERS = {
    "vsftpd": {"instance": "vsftpd", "kind": "vsftpd"},
    "vsftpd-tls": {"instance": "vsftpd-tls", "kind": "vsftpd"},
    "pure-ftpd": {"instance": "pureftpd", "kind": "pure-ftpd"},
    "proftpd-tls": {"instance": "proftpd-tls", "kind": "proftpd"},
}
ALIASES = {"pureftpd": "pure-ftpd", "pure": "pure-ftpd", "vsftpd-ftps": "vsftpd-tls",
           "proftpd": "proftpd-tls", "proftpd-ftps": "proftpd-tls"}
GROUPS = {"plain": ["vsftpd", "pure-ftpd"], "tls": ["vsftpd-tls", "proftpd-tls"],
          "ftps": ["vsftpd-tls", "proftpd-tls"]}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


def instance_names(servers, rtts):
    """The script's instances for these servers: direct for 0 ms, proxied for the others."""
    names = []
    for s in servers:
        base = SERVERS[s]["instance"]
        if any(r == 0 for r in rtts):
            names.append(base)
        if any(r > 0 for r in rtts):
            names.append(base + "-proxied")
    return names


def script(command, names):
    p = subprocess.run(["bash", str(SCRIPT), command, "--profile", "bench", *names],
                       stdin=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        die(f"scripts/test-servers.sh {command} --profile bench {' '.join(names)} failed")


def read_env(path=ENV_FILE):
    env = {}
    for line in path.read_text().splitlines():
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


class Instance:
    """One server instance of the script's bench profile, as its env file describes it."""

    def __init__(self, server, proxied, env):
        self.server, self.proxied = server, proxied
        self.kind = SERVERS[server]["kind"]
        self.name = SERVERS[server]["instance"] + ("-proxied" if proxied else "")
        var = "FTPSYNC_BENCH_" + self.name.upper().replace("-", "_")
        try:
            url = urlsplit(env[var + "_URL"])
            self.root = Path(env[var + "_ROOT"])
            self.xferlog = Path(env[var + "_XFERLOG"])
            lo, hi = env[var + "_PASSIVE"].split("-")
        except KeyError as e:
            die(f"{ENV_FILE} has no {e.args[0]}: does scripts/test-servers.sh know {self.name}?")
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self.user, self.password = unquote(url.username), unquote(url.password)
        self.passive = (int(lo), int(hi))
        self.tls = self.scheme != "ftp"
        self.ca = env.get("FTPSYNC_BENCH_TLS_CA")
        self.tlslog = Path(env[var + "_TLSLOG"]) if var + "_TLSLOG" in env else None

    def url(self, path):
        return f"{self.scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{path}"

    def log_sizes(self):
        """Where the transfer log and the TLS log end now (offsets for uploads_since, tls_since)."""
        sizes = []
        for path in (self.xferlog, self.tlslog):
            try:
                sizes.append(path.stat().st_size if path else 0)
            except OSError:
                sizes.append(0)
        return sizes

    def tls_since(self, offset):
        """TLS connections the server logged from `offset` on: control connections by protocol
        version, data connections (which resume their control connection's session), and data
        connections refused for not resuming it."""
        if not self.tlslog:
            return None
        try:
            with open(self.tlslog, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        control, data, refused = {}, 0, 0
        # vsftpd (debug_ssl) logs every connection's version, data connections (after the
        # login) with the user's name: "[pid N] [user] DEBUG: ... SSL version: TLSv1.3, ...".
        # proftpd logs each control connection's version, and "client reused TLS session for
        # data connection" for every data connection (then a rejection if the session was
        # another connection's).
        vs_rx = re.compile(r"\] (\[[^]]*\] )?DEBUG: .*SSL version: (TLSv[\d.]+),")
        pro_rx = re.compile(r"(TLSv[\d.]+) connection accepted")
        for line in text.splitlines():
            m = vs_rx.search(line)
            if m and m.group(1):
                data += 1
            elif m or (m := pro_rx.search(line)):
                v = m.group(m.lastindex)
                control[v] = control.get(v, 0) + 1
            elif "client reused TLS session for data connection" in line:
                data += 1
            elif "rejecting data connection" in line or "No SSL session reuse" in line:
                refused, data = refused + 1, data - 1
        return {"control": control, "data": data, "refused": refused}

    def uploads_since(self, offset):
        """Uploads the server logged from byte `offset` of its transfer log on."""
        return self.transfers_since(offset)

    def transfers_since(self, offset, download=False):
        """Uploads (or, with `download`, downloads) the server logged from byte `offset` of its
        transfer log on; counted under "uploads" either way."""
        try:
            with open(self.xferlog, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        direction, verb = ("o", "GET") if download else ("i", "PUT")
        n = ok = nbytes = 0
        paths = set()
        for line in text.splitlines():
            if self.kind in ("vsftpd", "proftpd"):
                # xferlog: 5 date fields, secs, host, bytes, name..., type, flag, DIRECTION, mode,
                # user, service, auth, auth-user, STATUS (name may contain spaces: count from the end)
                tok = line.split()
                if len(tok) < 18 or tok[-7] != direction:
                    continue
                n += 1
                ok += tok[-1] == "c"
                nbytes += int(tok[7]) if tok[7].isdigit() else 0
                paths.add(" ".join(tok[8:-9]))
            else:
                m = re.search(r'"' + verb + r' (.*)" (\d+) (\d+)\s*$', line)
                if not m:
                    continue
                n += 1
                ok += m.group(2) == "200"
                nbytes += int(m.group(3))
                paths.add(m.group(1))
        return {"uploads": n, "complete": ok, "bytes": nbytes, "distinct_paths": len(paths)}


class Servers:
    """The instances a run uses, started (and at the end stopped) through the script."""

    def __init__(self, servers, rtts):
        self.names = instance_names(servers, rtts)
        self.servers, self.rtts = servers, rtts
        self.instances = {}

    def start(self):
        script("start", self.names)
        env = read_env()
        for s in self.servers:
            for proxied in sorted({r > 0 for r in self.rtts}):
                self.instances[(s, proxied)] = Instance(s, proxied, env)

    def get(self, server, rtt):
        return self.instances[(server, rtt > 0)]

    def proxy_ports(self):
        return [f"{i.port},{i.passive[0]}-{i.passive[1]}" for i in self.instances.values() if i.proxied]

    def stop(self):
        script("stop", self.names)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proxy:
    """examples/latency_proxy on PROXY_ADDR, in its own process group, stopped by its group id."""

    PIDFILE = ENV_FILE.parent / "latency_proxy.pid"

    def __init__(self, binary, rtt_ms, ports):
        self.argv = [str(binary), "--listen", PROXY_ADDR, "--target", "127.0.0.1", "--ports", ",".join(ports),
                     "--delay-ms", str(rtt_ms // 2)]
        self.first_port = int(ports[0].split(",")[0])
        self.out = ENV_FILE.parent / "latency_proxy.out"
        self.proc = None

    def stop_stale(self):
        """Stops a proxy an earlier run left behind, by its recorded pid."""
        try:
            pid = int(self.PIDFILE.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            self.PIDFILE.unlink(missing_ok=True)
            return
        if b"latency_proxy" in cmdline:
            log(f"stopping a latency proxy an earlier run left behind (pid {pid})")
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
        self.PIDFILE.unlink(missing_ok=True)

    def start(self):
        self.stop_stale()
        if port_open(PROXY_ADDR, self.first_port):
            die(f"{PROXY_ADDR}:{self.first_port} is taken by another program; cannot start the proxy")
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
        self.PIDFILE.write_text(f"{self.proc.pid}\n")
        for _ in range(50):
            if port_open(PROXY_ADDR, self.first_port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        die(f"latency_proxy did not start; see {self.out}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
        self.PIDFILE.unlink(missing_ok=True)
        self.proc = None


def noop_rtt(inst, n=20):
    """Average time of n NOOPs on one logged-in control connection (over TLS for FTPS)."""
    if inst.tls:
        f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=inst.ca))
    else:
        f = ftplib.FTP()
    f.connect(inst.host, inst.port, timeout=15)
    f.login(inst.user, inst.password)
    f.voidcmd("NOOP")
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f.voidcmd("NOOP")
        ts.append((time.perf_counter() - t) * 1000)
    f.quit()
    return {"avg_ms": round(sum(ts) / len(ts), 2), "min_ms": round(min(ts), 2), "max_ms": round(max(ts), 2),
            "samples": n}
