#!/usr/bin/env bash
# Real FTP servers for ftpsync's integration tests and benchmark (run as root, Debian 12).
#
#   scripts/test-servers.sh [start]   install what is missing, (re)start both servers, verify them
#   scripts/test-servers.sh stop      stop both servers (idempotent)
#   scripts/test-servers.sh env       print the env file (source it to point the tests at the servers)
#
# vsftpd   127.0.0.1:2121, passive 30000-30099, user ftpsync-vs,   root /srv/ftpsync-test/vsftpd
# pure-ftpd 127.0.0.1:2122, passive 30100-30899, user ftpsync-pure, root /srv/ftpsync-test/pureftpd
# Password of both users: ftpsync-test-pw. Logs and configs live in /opt/ftpsync-test/.
#
# vsftpd comes from apt; pure-ftpd is unpacked with `dpkg -x` beside it, because Debian's FTP
# server packages conflict with one another. A server already running with the same
# configuration is left alone, so `start` is idempotent; a changed configuration restarts it.
set -euo pipefail

BASE=/opt/ftpsync-test
SRV=/srv/ftpsync-test
ENV_FILE=$BASE/servers.env
PASSWORD=ftpsync-test-pw

VS_USER=ftpsync-vs
VS_ROOT=$SRV/vsftpd
VS_PORT=2121
VS_BIN=/usr/sbin/vsftpd
VS_CONF=$BASE/vsftpd.conf
VS_PIDFILE=$BASE/vsftpd.pid

PURE_USER=ftpsync-pure
PURE_ROOT=$SRV/pureftpd
PURE_PORT=2122
PURE_DIR=$BASE/pure-ftpd
PURE_BIN=$PURE_DIR/usr/sbin/pure-ftpd
PURE_PIDFILE=$BASE/pureftpd.pid
PURE_ARGSFILE=$BASE/pureftpd.args
# pure-ftpd caps -c at half the passive range and sizes its listen backlog as 3 + c/8. With a
# backlog of 11 (-c 64), 32+ simultaneous connects overflow the accept queue and, with SYN
# cookies, some clients end up "connected" but never get a banner. -c 400 gives a backlog of 53,
# which needs 800 passive ports.
PURE_ARGS=(-S "127.0.0.1,$PURE_PORT" -l unix -E -H -A -B -c 400 -C 400 -p 30100:30899 -u 1
    -g "$PURE_PIDFILE" -O "clf:$BASE/pureftpd-xfer.log")

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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_banner() { # wait_banner NAME PORT LOG...
    local name=$1 port=$2 i
    shift 2
    for ((i = 0; i < 50; i++)); do
        banner_ok "$port" && return 0
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

# --- installation ----------------------------------------------------------------------------

install_tools() {
    local pkgs=()
    command -v curl >/dev/null || pkgs+=(curl)
    command -v pgrep >/dev/null || pkgs+=(procps)
    command -v awk >/dev/null || pkgs+=(mawk)
    if ((${#pkgs[@]})); then
        log "installing ${pkgs[*]}"
        apt_install "${pkgs[@]}"
    fi
}

install_vsftpd() {
    if [[ ! -x $VS_BIN ]]; then
        log "installing vsftpd"
        apt_install vsftpd
    fi
    [[ -x $VS_BIN ]] || die "vsftpd is not installed at $VS_BIN"
    # The package may have started Debian's own vsftpd (port 21, /etc/vsftpd.conf): stop it.
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl disable --now vsftpd >/dev/null 2>&1 || true
    fi
    if [[ -x /etc/init.d/vsftpd ]]; then
        /etc/init.d/vsftpd stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
        update-rc.d vsftpd disable >/dev/null 2>&1 || true
    fi
    pkill -x -f "$VS_BIN( /etc/vsftpd.conf)?" 2>/dev/null || true
}

install_pureftpd() {
    if [[ ! -x $PURE_BIN ]]; then
        log "unpacking pure-ftpd into $PURE_DIR"
        local tmp debs
        tmp=$(mktemp -d)
        # apt-get download runs as _apt when that user can write the folder (no warning)
        chmod 755 "$tmp"
        if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
        if ! (cd "$tmp" && apt-get download pure-ftpd >/dev/null 2>&1); then
            log "apt-get download pure-ftpd failed; running apt-get update and retrying"
            apt-get update -qq >/dev/null
            (cd "$tmp" && apt-get download pure-ftpd >/dev/null)
        fi
        debs=("$tmp"/pure-ftpd_*.deb)
        [[ -f ${debs[0]} ]] || die "apt-get download pure-ftpd gave no .deb"
        rm -rf "$PURE_DIR"
        mkdir -p "$PURE_DIR"
        dpkg -x "${debs[0]}" "$PURE_DIR"
        # Shared libraries it links against, from the package's own Depends (lib* only).
        dpkg-deb -f "${debs[0]}" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' |
            grep '^lib' >"$PURE_DIR/lib-depends" || true
        rm -rf "$tmp"
    fi
    if ldd "$PURE_BIN" | grep -q 'not found'; then
        local libs=(libc6 libcap2 libcrypt1 libpam0g libsodium23 libssl3)
        if [[ -s $PURE_DIR/lib-depends ]]; then mapfile -t libs <"$PURE_DIR/lib-depends"; fi
        log "pure-ftpd is missing shared libraries; installing ${libs[*]}"
        apt_install "${libs[@]}"
        if ldd "$PURE_BIN" | grep 'not found' >&2; then die "pure-ftpd still misses libraries"; fi
    fi
}

setup_user() { # setup_user NAME HOME
    local name=$1 home=$2
    mkdir -p "$home"
    if ! id "$name" >/dev/null 2>&1; then
        # /bin/bash: vsftpd's PAM stack (pam_shells) and pure-ftpd's unix auth both want a
        # shell listed in /etc/shells; /usr/sbin/nologin is refused by both.
        useradd --no-create-home --home-dir "$home" --shell /bin/bash --user-group "$name"
    elif [[ $(getent passwd "$name" | cut -d: -f6,7) != "$home:/bin/bash" ]]; then
        usermod --home "$home" --shell /bin/bash "$name"
    fi
    echo "$name:$PASSWORD" | chpasswd
    chown "$name:$name" "$home"
    chmod 755 "$home"
}

# --- vsftpd ----------------------------------------------------------------------------------

write_vsftpd_conf() {
    mkdir -p "$BASE/vsftpd-empty"
    chmod 755 "$BASE/vsftpd-empty"
    cat <<EOF
# Written by scripts/test-servers.sh: ftpsync test server (loopback only).
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$VS_PORT
background=YES
seccomp_sandbox=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30099
secure_chroot_dir=$BASE/vsftpd-empty
pam_service_name=vsftpd
userlist_enable=NO
xferlog_enable=YES
dual_log_enable=YES
xferlog_std_format=YES
xferlog_file=$BASE/vsftpd-xfer.log
vsftpd_log_file=$BASE/vsftpd.log
max_clients=0
max_per_ip=0
mdtm_write=YES
use_localtime=NO
EOF
}

vsftpd_pids() { pgrep -x -f "$VS_BIN $VS_CONF" 2>/dev/null || true; }

vsftpd_running() {
    local pid
    pid=$(pidfile_pid "$VS_PIDFILE")
    alive "$pid" && banner_ok "$VS_PORT"
}

stop_vsftpd() {
    local pid
    pid=$(pidfile_pid "$VS_PIDFILE")
    if alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
    pkill -x -f "$VS_BIN $VS_CONF" 2>/dev/null || true
    wait_gone "vsftpd" "$VS_PORT" vsftpd_pids
    rm -f "$VS_PIDFILE"
}

start_vsftpd() {
    local new
    new=$(write_vsftpd_conf)
    if vsftpd_running && [[ -f $VS_CONF && $(cat "$VS_CONF") == "$new" ]]; then
        log "vsftpd already running on 127.0.0.1:$VS_PORT"
        return
    fi
    stop_vsftpd
    printf '%s\n' "$new" >"$VS_CONF"
    port_open "$VS_PORT" && die "port $VS_PORT is already taken by another program"
    log "starting vsftpd on 127.0.0.1:$VS_PORT"
    # background=YES: vsftpd forks and the listener outlives this script.
    if ! "$VS_BIN" "$VS_CONF" >"$BASE/vsftpd.out" 2>&1; then
        cat "$BASE/vsftpd.out" >&2
        die "vsftpd exited with an error"
    fi
    wait_banner vsftpd "$VS_PORT" "$BASE/vsftpd.out" "$BASE/vsftpd.log"
    # The listener is the oldest process with our command line (sessions are its children).
    pgrep -o -x -f "$VS_BIN $VS_CONF" >"$VS_PIDFILE" || die "vsftpd listener not found"
}

# --- pure-ftpd -------------------------------------------------------------------------------

pure_pids() {
    local pid
    pid=$(pidfile_pid "$PURE_PIDFILE")
    alive "$pid" || return 0
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

pure_running() {
    local pid
    pid=$(pidfile_pid "$PURE_PIDFILE")
    alive "$pid" && banner_ok "$PURE_PORT"
}

stop_pureftpd() {
    local pid
    pid=$(pidfile_pid "$PURE_PIDFILE")
    if alive "$pid"; then
        # The daemon is a session leader; its sessions share its process group.
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        pkill -P "$pid" 2>/dev/null || true
    fi
    wait_gone "pure-ftpd" "$PURE_PORT" pure_pids
    rm -f "$PURE_PIDFILE"
}

start_pureftpd() {
    local want="${PURE_ARGS[*]}"
    if pure_running && [[ -f $PURE_ARGSFILE && $(cat "$PURE_ARGSFILE") == "$want" ]]; then
        log "pure-ftpd already running on 127.0.0.1:$PURE_PORT"
        return
    fi
    stop_pureftpd
    port_open "$PURE_PORT" && die "port $PURE_PORT is already taken by another program"
    log "starting pure-ftpd on 127.0.0.1:$PURE_PORT"
    # -B daemonizes; TZ=UTC so its LIST times are GMT like vsftpd's.
    if ! TZ=UTC "$PURE_BIN" "${PURE_ARGS[@]}" >"$BASE/pureftpd.out" 2>&1; then
        cat "$BASE/pureftpd.out" >&2
        die "pure-ftpd exited with an error"
    fi
    wait_banner pure-ftpd "$PURE_PORT" "$BASE/pureftpd.out" "$BASE/pureftpd-xfer.log"
    printf '%s\n' "$want" >"$PURE_ARGSFILE"
}

wait_gone() { # wait_gone NAME PORT PIDS_FN: up to 5 s, then SIGKILL
    local name=$1 port=$2 fn=$3 i pids
    for ((i = 0; i < 50; i++)); do
        pids=$($fn)
        [[ -z $pids ]] && ! port_open "$port" && return 0
        if ((i == 25)) && [[ -n $pids ]]; then
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
        fi
        sleep 0.1
    done
    port_open "$port" && die "$name: port $port is still in use (by another program?)"
    return 0
}

# --- verification ----------------------------------------------------------------------------

# Upload a probe with curl, list it, compare the bytes on disk, set its mtime, delete it.
verify() { # verify NAME URL ROOT SETTIME_CMD
    local name=$1 url=$2 root=$3 settime=$4 probe tmp listing mtime
    probe="probe-$$-$RANDOM.bin" # no leading dot: plain LIST hides dot files
    tmp=$(mktemp)
    printf 'ftpsync probe %s\n\x00\x01\xff\r\nend\n' "$name" >"$tmp"
    curl -sS --max-time 20 -T "$tmp" "$url$probe" ||
        die "$name: upload of $probe failed"
    listing=$(curl -sS --max-time 20 "$url") || die "$name: LIST failed"
    grep -q " $probe\$" <<<"${listing//$'\r'/}" || die "$name: $probe missing from LIST: $listing"
    cmp -s "$tmp" "$root/$probe" || die "$name: $root/$probe differs from what was uploaded"
    curl -sS --max-time 20 -o /dev/null -Q "$settime 20200101000000 $probe" "$url" ||
        die "$name: '$settime' failed"
    mtime=$(stat -c %Y "$root/$probe")
    [[ $mtime == 1577836800 ]] || die "$name: $settime set mtime $mtime, not 1577836800"
    curl -sS --max-time 20 -o /dev/null -Q "DELE $probe" "$url" || die "$name: DELE failed"
    [[ ! -e $root/$probe ]] || die "$name: $root/$probe still there after DELE"
    rm -f "$tmp"
    log "$name verified: login, STOR, LIST, bytes on disk, $settime, DELE"
}

write_env() {
    cat >"$ENV_FILE" <<EOF
export FTPSYNC_TEST_VSFTPD_URL=ftp://$VS_USER:$PASSWORD@127.0.0.1:$VS_PORT/
export FTPSYNC_TEST_VSFTPD_ROOT=$VS_ROOT
export FTPSYNC_TEST_PUREFTPD_URL=ftp://$PURE_USER:$PASSWORD@127.0.0.1:$PURE_PORT/
export FTPSYNC_TEST_PUREFTPD_ROOT=$PURE_ROOT
EOF
}

# --- commands --------------------------------------------------------------------------------

cmd_start() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    mkdir -p "$BASE" "$SRV"
    install_tools
    install_vsftpd
    install_pureftpd
    setup_user "$VS_USER" "$VS_ROOT"
    setup_user "$PURE_USER" "$PURE_ROOT"
    start_vsftpd
    start_pureftpd
    verify vsftpd "ftp://$VS_USER:$PASSWORD@127.0.0.1:$VS_PORT/" "$VS_ROOT" MDTM
    verify pure-ftpd "ftp://$PURE_USER:$PASSWORD@127.0.0.1:$PURE_PORT/" "$PURE_ROOT" MFMT
    write_env
    log "servers ready; environment in $ENV_FILE"
}

cmd_stop() {
    stop_vsftpd
    stop_pureftpd
    log "servers stopped"
}

cmd_env() {
    [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: run '$0 start' first"
    cat "$ENV_FILE"
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
*) die "usage: $0 [start|stop|env]" ;;
esac
