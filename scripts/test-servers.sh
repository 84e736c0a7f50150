#!/usr/bin/env bash
# Real FTP servers for ftpsync's integration tests and benchmark (run as root, Debian 12).
# shellcheck source-path=SCRIPTDIR
#
#   scripts/test-servers.sh [start] [--profile P] [NAME...]  install what is missing, (re)start
#                                      the profile's servers (or only NAME...), verify them
#   scripts/test-servers.sh stop [--profile P] [NAME...]     stop them (idempotent)
#   scripts/test-servers.sh env [--profile P]                print the env file (source it)
#
# Profile `test` (the default), for the integration tests:
# vsftpd    127.0.0.1:2121, passive 30000-30099, user ftpsync-vs,   root /srv/ftpsync-test/vsftpd
# pure-ftpd 127.0.0.1:2122, passive 30100-30899, user ftpsync-pure, root /srv/ftpsync-test/pureftpd
# FTPS (TLS required for login and data, data connections must resume the control session):
# vsftpd    127.0.0.1:2123 explicit (AUTH TLS), passive 30900-30999 } user ftpsync-vs,
# vsftpd    127.0.0.1:2124 implicit,            passive 31000-31099 } same root as above
# proftpd   127.0.0.1:2125 explicit (AUTH TLS), passive 31100-31199 } user ftpsync-pro,
# proftpd   127.0.0.1:2126 implicit,            passive 31200-31299 } root /srv/ftpsync-test/proftpd
# Their certificate (for 127.0.0.1 and localhost) is signed by a throw-away CA made here:
# /opt/ftpsync-test/tls/ca.pem. Password of every user: ftpsync-test-pw. Logs and configs live
# in /opt/ftpsync-test/.
#
# Profile `bench`, for bench/bench.py: the same settings, in /opt/ftpsync-bench/ (configs, logs,
# CA), with users ftpsync-bench-{vs,pure,pro} and roots /srv/ftpsync-bench/{vsftpd,pureftpd,
# proftpd}. Each server has a direct instance and a `-proxied` one, which advertises 127.0.0.2
# (where bench/bench.py runs the latency proxy) as its passive address; the certificate is also
# valid for 127.0.0.2. Passive ranges stay below 30000 (clear of the test profile) and below the
# kernel's ephemeral ports (32768+):
#   vsftpd       :2221 21000-21099   vsftpd-proxied       :2231 21100-21199
#   pureftpd     :2222 21200-21599   pureftpd-proxied     :2232 21600-21999
#   vsftpd-tls   :2223 22000-22099   vsftpd-tls-proxied   :2233 22100-22199  (explicit TLS)
#   proftpd-tls  :2225 22200-22299   proftpd-tls-proxied  :2235 22300-22399  (explicit TLS)
# The env file (/opt/ftpsync-bench/servers.env) names, for each instance NAME (upper case, `_`
# for `-`): FTPSYNC_BENCH_NAME_URL (with the proxy's address for -proxied), _ROOT, _XFERLOG,
# _PASSIVE (LO-HI) and, for TLS, _TLSLOG (a log naming each connection's TLS version); and
# FTPSYNC_BENCH_TLS_CA.
#
# vsftpd comes from apt; pure-ftpd and proftpd are unpacked with `dpkg -x` beside it, because
# Debian's FTP server packages conflict with one another. A server already running with the same
# configuration is left alone, so `start` is idempotent; a changed configuration restarts it.
set -euo pipefail

PASSWORD=ftpsync-test-pw
VS_BIN=/usr/sbin/vsftpd
# The server binaries are unpacked once, into the test profile's folder, for both profiles.
PRO_DIR=/opt/ftpsync-test/proftpd
PRO_BIN=$PRO_DIR/usr/sbin/proftpd
PURE_DIR=/opt/ftpsync-test/pure-ftpd
PURE_BIN=$PURE_DIR/usr/sbin/pure-ftpd

# Instances, one server process each: NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
# (TLS: none|explicit|implicit; PASV_ADDRESS: the address to advertise in PASV replies, when not
# the server's own). Files: $BASE/NAME.conf (pure-ftpd: NAME.args), NAME.pid, NAME.log,
# NAME-xfer.log (proftpd also NAME.scoreboard, NAME-tls.log).
profile_test() {
    BASE=/opt/ftpsync-test
    SRV=/srv/ftpsync-test
    TLS_IPS=(127.0.0.1)
    VS_USER=ftpsync-vs
    VS_ROOT=$SRV/vsftpd
    VS_INSTANCES=(
        "vsftpd 2121 30000 30099 none"
        "vsftpd-tls 2123 30900 30999 explicit"
        "vsftpd-tls-implicit 2124 31000 31099 implicit"
    )
    PURE_USER=ftpsync-pure
    PURE_ROOT=$SRV/pureftpd
    # pure-ftpd caps -c at half the passive range and sizes its listen backlog as 3 + c/8. With
    # a backlog of 11 (-c 64), 32+ simultaneous connects overflow the accept queue and, with SYN
    # cookies, some clients end up "connected" but never get a banner. -c 400 (half of 800
    # passive ports, see pure_args) gives a backlog of 53.
    PURE_INSTANCES=("pureftpd 2122 30100 30899 none")
    PRO_USER=ftpsync-pro
    PRO_ROOT=$SRV/proftpd
    PRO_INSTANCES=(
        "proftpd-tls 2125 31100 31199 explicit"
        "proftpd-tls-implicit 2126 31200 31299 implicit"
    )
}

profile_bench() {
    BASE=/opt/ftpsync-bench
    SRV=/srv/ftpsync-bench
    TLS_IPS=(127.0.0.1 127.0.0.2)
    VS_USER=ftpsync-bench-vs
    VS_ROOT=$SRV/vsftpd
    VS_INSTANCES=(
        "vsftpd 2221 21000 21099 none"
        "vsftpd-proxied 2231 21100 21199 none 127.0.0.2"
        "vsftpd-tls 2223 22000 22099 explicit"
        "vsftpd-tls-proxied 2233 22100 22199 explicit 127.0.0.2"
    )
    PURE_USER=ftpsync-bench-pure
    PURE_ROOT=$SRV/pureftpd
    PURE_INSTANCES=(
        "pureftpd 2222 21200 21599 none"
        "pureftpd-proxied 2232 21600 21999 none 127.0.0.2"
    )
    PRO_USER=ftpsync-bench-pro
    PRO_ROOT=$SRV/proftpd
    PRO_INSTANCES=(
        "proftpd-tls 2225 22200 22299 explicit"
        "proftpd-tls-proxied 2235 22300 22399 explicit 127.0.0.2"
    )
}

log() { printf '[test-servers] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# --- helpers ---------------------------------------------------------------------------------

apt_install() { # apt_install PKG...: install, running `apt-get update` only if needed
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
        log "apt-get install $* failed; running apt-get update and retrying"
        apt-get update -qq >/dev/null
        apt-get install -y --no-install-recommends "$@" >/dev/null
    fi
}

# Live (non-zombie) process?
alive() {
    local pid=$1 state
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

pidfile_pid() { if [[ -s $1 ]]; then tr -dc '0-9' <"$1"; fi; }

# Does 127.0.0.1:PORT answer with a 220 banner line within 2 s?
banner_ok() {
    local line=''
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        exec 3>&-
        [[ $line == 220* ]]
    ) 2>/dev/null
}

# Does 127.0.0.1:PORT answer with a 220 banner line over TLS from the first byte? Takes 2 s:
# s_client waits for more until the timeout ends it.
tls_banner_ok() {
    local out
    out=$(timeout 2 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$1" </dev/null 2>/dev/null) ||
        true
    [[ $out == 220* ]]
}

greeting_ok() { # greeting_ok PORT TLS
    if [[ $2 == implicit ]]; then tls_banner_ok "$1"; else banner_ok "$1"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Does the server running there still greet? Three tries: a busy server (tests running against
# it, a loaded machine) can take over 2 s to answer, and a restart would cut their connections.
still_serving() { # still_serving PORT TLS
    local i
    for i in 1 2 3; do greeting_ok "$1" "$2" && return 0; done
    return 1
}

wait_banner() { # wait_banner NAME PORT TLS LOG...
    local name=$1 port=$2 tls=$3 i
    shift 3
    for ((i = 0; i < 50; i++)); do
        greeting_ok "$port" "$tls" && return 0
        sleep 0.2
    done
    log "$name did not answer with a 220 banner on 127.0.0.1:$port within 10 s; its logs:"
    local f
    for f in "$@"; do
        [[ -f $f ]] && {
            echo "----- $f" >&2
            tail -n 40 "$f" >&2
        }
    done
    die "$name failed to start"
}

# The installation and the per-server functions live beside this script.
# shellcheck source=test-servers/install.sh
source "$(dirname "${BASH_SOURCE[0]}")/test-servers/install.sh"
# shellcheck source=test-servers/servers.sh
source "$(dirname "${BASH_SOURCE[0]}")/test-servers/servers.sh"

# --- verification ----------------------------------------------------------------------------

# Upload a probe with curl, list it, compare the bytes on disk, set its mtime, delete it.
verify() { # verify NAME URL ROOT SETTIME_CMD [CURL_OPTION...]
    local name=$1 url=$2 root=$3 settime=$4 probe tmp listing mtime
    shift 4
    local c=(curl -sS --max-time 20 "$@")
    probe="probe-$$-$RANDOM.bin" # no leading dot: plain LIST hides dot files
    tmp=$(mktemp)
    printf 'ftpsync probe %s\n\x00\x01\xff\r\nend\n' "$name" >"$tmp"
    "${c[@]}" -T "$tmp" "$url$probe" ||
        die "$name: upload of $probe failed"
    listing=$("${c[@]}" "$url") || die "$name: LIST failed"
    grep -q " $probe\$" <<<"${listing//$'\r'/}" || die "$name: $probe missing from LIST: $listing"
    cmp -s "$tmp" "$root/$probe" || die "$name: $root/$probe differs from what was uploaded"
    "${c[@]}" -o /dev/null -Q "$settime 20200101000000 $probe" "$url" ||
        die "$name: '$settime' failed"
    mtime=$(stat -c %Y "$root/$probe")
    [[ $mtime == 1577836800 ]] || die "$name: $settime set mtime $mtime, not 1577836800"
    "${c[@]}" -o /dev/null -Q "DELE $probe" "$url" || die "$name: DELE failed"
    [[ ! -e $root/$probe ]] || die "$name: $root/$probe still there after DELE"
    rm -f "$tmp"
    log "$name verified: login, STOR, LIST, bytes on disk, $settime, DELE"
}

# The instances of the profile, one a line: KIND NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV].
all_instances() {
    local i
    for i in "${VS_INSTANCES[@]}"; do echo "vsftpd $i"; done
    for i in "${PURE_INSTANCES[@]}"; do echo "pureftpd $i"; done
    for i in "${PRO_INSTANCES[@]}"; do echo "proftpd $i"; done
}

kind_user() {
    case $1 in vsftpd) echo "$VS_USER" ;; pureftpd) echo "$PURE_USER" ;; proftpd) echo "$PRO_USER" ;; esac
}

kind_root() {
    case $1 in vsftpd) echo "$VS_ROOT" ;; pureftpd) echo "$PURE_ROOT" ;; proftpd) echo "$PRO_ROOT" ;; esac
}

port_of() { # port_of NAME
    local kind name port rest
    while read -r kind name port rest; do
        if [[ $name == "$1" ]]; then echo "$port"; fi
    done < <(all_instances)
}

# The URL a client uses: through PASV_ADDRESS (where the latency proxy listens) when it is set.
instance_url() { # instance_url KIND NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV]
    local scheme=ftp
    case $6 in explicit) scheme=ftpes ;; implicit) scheme=ftps ;; esac
    echo "$scheme://$(kind_user "$1"):$PASSWORD@${7:-127.0.0.1}:$3/"
}

env_test() {
    local vs=$VS_USER:$PASSWORD@127.0.0.1 pro=$PRO_USER:$PASSWORD@127.0.0.1
    cat <<ENV
export FTPSYNC_TEST_VSFTPD_URL=ftp://$vs:$(port_of vsftpd)/
export FTPSYNC_TEST_VSFTPD_ROOT=$VS_ROOT
export FTPSYNC_TEST_PUREFTPD_URL=ftp://$PURE_USER:$PASSWORD@127.0.0.1:$(port_of pureftpd)/
export FTPSYNC_TEST_PUREFTPD_ROOT=$PURE_ROOT
export FTPSYNC_TEST_TLS_CA=$TLS_DIR/ca.pem
export FTPSYNC_TEST_VSFTPD_TLS_URL=ftpes://$vs:$(port_of vsftpd-tls)/
export FTPSYNC_TEST_VSFTPD_TLS_IMPLICIT_URL=ftps://$vs:$(port_of vsftpd-tls-implicit)/
export FTPSYNC_TEST_VSFTPD_TLS_ROOT=$VS_ROOT
export FTPSYNC_TEST_PROFTPD_TLS_URL=ftpes://$pro:$(port_of proftpd-tls)/
export FTPSYNC_TEST_PROFTPD_TLS_IMPLICIT_URL=ftps://$pro:$(port_of proftpd-tls-implicit)/
export FTPSYNC_TEST_PROFTPD_TLS_ROOT=$PRO_ROOT
ENV
}

env_bench() {
    local kind name port pmin pmax tls pasv var var2
    echo "export FTPSYNC_BENCH_TLS_CA=$TLS_DIR/ca.pem"
    while read -r kind name port pmin pmax tls pasv; do
        var=FTPSYNC_BENCH_${name//-/_}
        var=${var^^}
        # shellcheck disable=SC2086 # pasv: empty or one word
        echo "export ${var}_URL=$(instance_url "$kind" "$name" "$port" "$pmin" "$pmax" "$tls" $pasv)"
        echo "export ${var}_ROOT=$(kind_root "$kind")"
        echo "export ${var}_XFERLOG=$BASE/$name-xfer.log"
        echo "export ${var}_PASSIVE=$pmin-$pmax"
        # Where the server logs each TLS connection's protocol version (vsftpd: debug_ssl).
        if [[ $tls != none ]]; then
            if [[ $kind == vsftpd ]]; then var2=$BASE/$name.log; else var2=$BASE/$name-tls.log; fi
            echo "export ${var}_TLSLOG=$var2"
        fi
    done < <(all_instances)
}

# curl options for an instance: TLS required and verified against the test CA.
tls_curl_options() { # tls_curl_options TLS
    case $1 in
    none) ;;
    explicit) printf '%s\n' --ssl-reqd --cacert "$TLS_DIR/ca.pem" ;;
    implicit) printf '%s\n' --cacert "$TLS_DIR/ca.pem" ;;
    esac
}

# --- commands --------------------------------------------------------------------------------

selected_has() { # selected_has KIND
    local line
    for line in "${SELECTED[@]}"; do [[ $line == "$1 "* ]] && return 0; done
    return 1
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    mkdir -p "$BASE" "$SRV"
    install_tools
    make_tls_certs
    local kind name port pmin pmax tls pasv line options scheme
    for kind in vsftpd pureftpd proftpd; do
        if selected_has "$kind"; then
            "install_$kind"
            setup_user "$(kind_user "$kind")" "$(kind_root "$kind")"
        fi
    done
    for line in "${SELECTED[@]}"; do
        read -r kind name port pmin pmax tls pasv <<<"$line"
        # shellcheck disable=SC2086 # pasv: empty or one word
        "start_$kind" "$name" "$port" "$pmin" "$pmax" "$tls" $pasv
    done
    for line in "${SELECTED[@]}"; do
        read -r kind name port pmin pmax tls pasv <<<"$line"
        mapfile -t options < <(tls_curl_options "$tls")
        # Data connections straight to the server, not to the proxy it advertises.
        if [[ -n $pasv ]]; then options+=(--ftp-skip-pasv-ip); fi
        scheme=ftp
        if [[ $tls == implicit ]]; then scheme=ftps; fi
        verify "$name" "$scheme://$(kind_user "$kind"):$PASSWORD@127.0.0.1:$port/" "$(kind_root "$kind")" \
            "$([[ $kind == vsftpd ]] && echo MDTM || echo MFMT)" "${options[@]}"
    done
    "env_$PROFILE" >"$ENV_FILE"
    log "servers ready; environment in $ENV_FILE"
}

cmd_stop() {
    local kind name port rest line
    for line in "${SELECTED[@]}"; do
        read -r kind name port rest <<<"$line"
        "stop_$kind" "$name" "$port"
    done
    log "servers stopped"
}

cmd_env() {
    [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: run '$0 start${PROFILE/#bench/ --profile bench}' first"
    cat "$ENV_FILE"
}

usage() { die "usage: $0 [start|stop|env] [--profile test|bench] [NAME...]"; }

CMD=start
PROFILE="test"
NAMES=()
while (($#)); do
    case $1 in
    start | stop | env) CMD=$1 ;;
    --profile) PROFILE=${2:-} && shift ;;
    --profile=*) PROFILE=${1#*=} ;;
    -*) usage ;;
    *) NAMES+=("$1") ;;
    esac
    shift
done
case $PROFILE in test | bench) "profile_$PROFILE" ;; *) usage ;; esac
TLS_DIR=$BASE/tls
ENV_FILE=$BASE/servers.env
mapfile -t SELECTED < <(all_instances)
if ((${#NAMES[@]})); then
    wanted=()
    for name in "${NAMES[@]}"; do
        line=$(all_instances | awk -v n="$name" '$2 == n')
        [[ -n $line ]] ||
            die "no instance $name in profile $PROFILE: $(all_instances | cut -d' ' -f2 | xargs)"
        wanted+=("$line")
    done
    SELECTED=("${wanted[@]}")
fi

case $CMD in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
esac
