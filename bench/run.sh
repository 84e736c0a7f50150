#!/usr/bin/env bash
# ftpsync benchmark: ftpsync vs lftp vs rclone on real FTP servers, at 0 ms and through a latency
# proxy. Run as root on Debian 12. See BENCHMARKS.md for the method and the latest results.
#
#   bash bench/run.sh                      full matrix (rewrites the tables in BENCHMARKS.md)
#   bash bench/run.sh --quick              site tree, vsftpd, RTT 0 and 20 ms
#   bash bench/run.sh --trees site --servers vsftpd-tls,proftpd-tls --rtt 20 --no-doc   (FTPS)
#   bash bench/run.sh --trees site,deep --servers vsftpd --rtt 0,20 --tools ftpsync,lftp
#   bash bench/run.sh --skip-large         everything but the 512 MiB tree
#   bash bench/run.sh --scale              ftpsync alone, 100,000 files, pure-ftpd, 0 ms
#   bash bench/run.sh --ci                 CI redeploy: fresh checkout, 5% changed (vsftpd, 20 ms)
#   bash bench/run.sh --pull               pull: server to local (vsftpd, pure-ftpd; 0 and 20 ms)
#
# Other options (passed to bench/bench.py): --seed N, --repeat N (runs per 0 ms cell, default 3),
# --timeout-min M (per tool run, default 15),
# --workdir DIR (default /var/tmp/ftpsync-bench), --keep-remote, --update-doc, --no-doc.
#
# Servers: vsftpd, pure-ftpd, and over FTPS vsftpd-tls, proftpd-tls (--servers plain|tls picks a
# group). bench/bench.py starts and stops them with `scripts/test-servers.sh --profile bench`,
# which also installs the server binaries when missing.
#
# Installs what is missing (lftp, rclone), builds ftpsync and the latency proxy in release mode,
# then runs bench/bench.py.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[bench] %s\n' "$*" >&2; }

[[ $(id -u) == 0 ]] || {
    say "must run as root (starts FTP servers, creates users)"
    exit 1
}

for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]]; then
        exec python3 bench/bench.py --help
    fi
done

missing=()
command -v lftp >/dev/null || missing+=(lftp)
command -v rclone >/dev/null || missing+=(rclone)
command -v diff >/dev/null || missing+=(diffutils)
command -v python3 >/dev/null || missing+=(python3)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

say "building ftpsync and the latency proxy (release)"
cargo build --release --bin ftpsync --example latency_proxy

exec python3 bench/bench.py --command "bash bench/run.sh${*:+ $*}" "$@"
