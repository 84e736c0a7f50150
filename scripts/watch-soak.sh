#!/usr/bin/env bash
# A long --watch run on a 10,000-file tree with changes made during it; prints the CPU time the
# ftpsync process used, the cycles it ran, and whether the server ended as an exact mirror.
#   scripts/watch-soak.sh [MINUTES] [FTP_URL_OF_AN_EMPTY_FOLDER SERVER_SIDE_FOLDER]
# Default: 10 minutes against the pure-ftpd started by scripts/test-servers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
if [[ $# -ge 3 ]]; then
    url="$2"; remote="$3"
else
    bash scripts/test-servers.sh start >/dev/null
    # shellcheck disable=SC1091
    source /opt/ftpsync-test/servers.env
    url="${FTPSYNC_TEST_PUREFTPD_URL}watch-soak"; remote="$FTPSYNC_TEST_PUREFTPD_ROOT/watch-soak"
    rm -rf "$remote"
fi
cargo build --release --quiet
work="$(mktemp -d)"; trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
local_dir="$work/tree"
python3 - "$local_dir" <<'PY'
import os, random, sys
root = sys.argv[1]; r = random.Random(7)
for i in range(10_000):
    d = os.path.join(root, f"d{i % 500:03d}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "wb") as f:
        f.write(os.urandom(r.randint(50, 3000)))
PY
XDG_STATE_HOME="$work/state" target/release/ftpsync --watch --debounce 2s --delete --json -j 8 \
    "$local_dir" "$url" >"$work/cycles.jsonl" 2>"$work/stderr.log" &
pid=$!
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
end=$((SECONDS + minutes * 60))
round=0
while ((SECONDS < end - 30)); do
    sleep 30
    round=$((round + 1))
    python3 - "$local_dir" "$round" <<'PY'
import os, random, sys, shutil
root, n = sys.argv[1], int(sys.argv[2]); r = random.Random(n)
files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
for p in r.sample(files, 10):
    with open(p, "ab") as f: f.write(b"changed %d\n" % n)
for p in r.sample(files, 5):
    os.remove(p)
d = os.path.join(root, f"new{n}")
os.makedirs(d, exist_ok=True)
for i in range(5):
    open(os.path.join(d, f"n{i}.txt"), "w").write(f"round {n} file {i}\n")
old = os.path.join(root, f"d{n:03d}")
if os.path.isdir(old):
    os.rename(old, old + "-renamed")
PY
done
sleep 25
cpu=$(ticks)
kill -TERM "$pid"; wait "$pid" || true
hz=$(getconf CLK_TCK)
cycles=$(wc -l <"$work/cycles.jsonl")
echo "minutes: $minutes, change rounds: $round, cycles: $cycles"
echo "CPU time of ftpsync: $(python3 -c "print(round($cpu / $hz, 2))") s (user+sys, whole run incl. the first 10,000-file sync)"
python3 - "$work/cycles.jsonl" <<'PY'
import json, sys
c = [json.loads(l) for l in open(sys.argv[1])]
print("first cycle: %d files uploaded in %.1f s; later cycles: %d, uploads %d, deletions %d, failures %d" % (
    c[0]["files_uploaded"], c[0]["elapsed_secs"], len(c) - 1,
    sum(x["files_uploaded"] for x in c[1:]), sum(x["deleted"] for x in c[1:]), sum(x["failed"] for x in c)))
PY
if diff -r "$local_dir" "$remote" >/dev/null; then echo "exact mirror: yes"; else echo "exact mirror: NO"; diff -r "$local_dir" "$remote" | head || true; exit 1; fi
