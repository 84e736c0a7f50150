#!/usr/bin/env bash
# ftpsync in one minute: builds it, starts a throwaway FTP server on 127.0.0.1 (the
# demo_server example), mirrors a sample folder to it twice (the second run has nothing to
# upload) and checks the result with diff. Nothing is left behind.
#
#   scripts/demo.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

say() { printf '\n==> %s\n' "$*"; }

say "Building ftpsync and the demo FTP server (release)"
cargo build --release --bin ftpsync --example demo_server

work="$(mktemp -d "${TMPDIR:-/tmp}/ftpsync-demo.XXXXXX")"
sample="$work/sample"
served="$work/served"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say "Creating a sample folder: $sample"
mkdir -p "$sample/css" "$sample/img" "$sample/docs/notes" "$served"
printf '<!doctype html>\n<title>Demo</title>\n<link rel="stylesheet" href="css/site.css">\n<p>Hello from ftpsync.</p>\n' >"$sample/index.html"
printf 'body { font-family: sans-serif; }\n' >"$sample/css/site.css"
printf 'Mirrored by ftpsync.\n' >"$sample/docs/README.txt"
printf -- '- try --help\n' >"$sample/docs/notes/todo.txt"
head -c 300000 /dev/urandom >"$sample/img/photo.bin"
(cd "$sample" && find . -type f | sort | sed 's|^\./|    |')

say "Starting the demo FTP server (serving $served)"
server_log="$work/server.log"
"$target_dir/release/examples/demo_server" --port 0 "$served" >"$server_log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do # up to 10 s
    port="$(sed -n 's|.*ftp://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$server_log")"
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$port" ]] || { echo "demo server did not start:" >&2; cat "$server_log" >&2; exit 1; }
for _ in $(seq 50); do # and check the port answers, up to 5 s
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "port $port does not answer" >&2; exit 1; }
cat "$server_log"

# The demo server accepts any password; passing it this way keeps ftpsync from asking for one.
export FTPSYNC_PASSWORD="${FTPSYNC_PASSWORD:-demo}"
# Keep ftpsync's upload record in the demo folder rather than in ~/.local/state.
export XDG_STATE_HOME="$work/state"
url="ftp://demo@127.0.0.1:$port/site"

say "First sync: ftpsync -j 4 $sample $url"
"$target_dir/release/ftpsync" -j 4 "$sample" "$url"

say "Second sync: nothing has changed, so nothing should be uploaded"
"$target_dir/release/ftpsync" -j 4 "$sample" "$url"

say "Comparing the sample folder with what the server stored"
diff -r "$sample" "$served/site" && echo "mirror verified"
