#!/usr/bin/env bash
# Real FTP servers for ftpsync's integration tests and benchmark (run as root, Debian 12).
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

# --- installation ----------------------------------------------------------------------------

install_tools() {
    local pkgs=()
    command -v curl >/dev/null || pkgs+=(curl)
    command -v pgrep >/dev/null || pkgs+=(procps)
    command -v awk >/dev/null || pkgs+=(mawk)
    command -v openssl >/dev/null || pkgs+=(openssl)
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

# True when one of the binaries links a shared library that is not installed (and names it).
# ldd's output is captured first, then tested: piped straight into a quiet grep under
# pipefail, the pipeline fails when grep stops reading at the first match and ldd dies of
# SIGPIPE, so missing libraries went unseen.
missing_libs() {
    local out
    out=$(ldd "$@" 2>&1) || true
    if [[ $out == *"not found"* ]]; then
        grep 'not found' <<<"$out" >&2
        return 0
    fi
    return 1
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
    if missing_libs "$PURE_BIN"; then
        local libs=(libc6 libcap2 libcrypt1 libpam0g libsodium23 libssl3)
        if [[ -s $PURE_DIR/lib-depends ]]; then mapfile -t libs <"$PURE_DIR/lib-depends"; fi
        log "pure-ftpd is missing shared libraries; installing ${libs[*]}"
        apt_install "${libs[@]}"
        if missing_libs "$PURE_BIN"; then die "pure-ftpd still misses libraries"; fi
    fi
}

install_proftpd() {
    # mod_tls is a loadable module, shipped in proftpd-mod-crypto.
    if [[ ! -x $PRO_BIN || ! -f $PRO_DIR/usr/lib/proftpd/mod_tls.so ]]; then
        log "unpacking proftpd into $PRO_DIR"
        local tmp deb
        tmp=$(mktemp -d)
        chmod 755 "$tmp"
        if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
        if ! (cd "$tmp" && apt-get download proftpd-core proftpd-mod-crypto >/dev/null 2>&1); then
            log "apt-get download proftpd failed; running apt-get update and retrying"
            apt-get update -qq >/dev/null
            (cd "$tmp" && apt-get download proftpd-core proftpd-mod-crypto >/dev/null)
        fi
        rm -rf "$PRO_DIR"
        mkdir -p "$PRO_DIR"
        : >"$PRO_DIR/lib-depends"
        for deb in "$tmp"/proftpd-core_*.deb "$tmp"/proftpd-mod-crypto_*.deb; do
            [[ -f $deb ]] || die "apt-get download gave no $(basename "$deb")"
            dpkg -x "$deb" "$PRO_DIR"
            # Shared libraries it links against, from the package's own Depends (lib* only).
            dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' |
                grep '^lib' >>"$PRO_DIR/lib-depends" || true
        done
        rm -rf "$tmp"
    fi
    local bins=("$PRO_BIN" "$PRO_DIR/usr/lib/proftpd/mod_tls.so")
    if missing_libs "${bins[@]}"; then
        local libs=(libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3)
        if [[ -s $PRO_DIR/lib-depends ]]; then mapfile -t libs < <(sort -u "$PRO_DIR/lib-depends"); fi
        log "proftpd is missing shared libraries; installing ${libs[*]}"
        apt_install "${libs[@]}"
        if missing_libs "${bins[@]}"; then die "proftpd still misses libraries"; fi
    fi
}

# Is the server certificate valid for every address in TLS_IPS?
cert_ips_ok() {
    local ip out
    for ip in "${TLS_IPS[@]}"; do
        out=$(openssl x509 -noout -checkip "$ip" -in "$TLS_DIR/server.pem" 2>/dev/null) || return 1
        [[ $out == *" does match"* ]] || return 1
    done
}

# A throw-away CA, and a certificate for TLS_IPS and localhost signed by it; made again when
# missing, not matching, not valid for one of TLS_IPS, or expiring within 30 days.
make_tls_certs() {
    if [[ -s $TLS_DIR/server.key ]] &&
        openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 2592000 -noout -in "$TLS_DIR/server.pem" >/dev/null 2>&1 &&
        cert_ips_ok; then
        return
    fi
    local san ip
    san=$(for ip in "${TLS_IPS[@]}"; do printf 'IP:%s,' "$ip"; done)DNS:localhost
    log "making a test CA and server certificate in $TLS_DIR"
    rm -rf "$TLS_DIR"
    mkdir -p "$TLS_DIR"
    chmod 755 "$TLS_DIR"
    (
        cd "$TLS_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem \
            -subj "/CN=ftpsync test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=localhost" 2>/dev/null
        printf '%s\n' "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=$san" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext ca.srl
        chmod 600 ca.key server.key
        chmod 644 ca.pem server.pem
    ) || die "openssl could not make the test certificates"
}

# Changes with the certificate, so that the configurations naming it restart their servers.
cert_stamp() { openssl x509 -noout -fingerprint -sha256 -in "$TLS_DIR/server.pem" | cut -d= -f2; }

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

write_vsftpd_conf() { # write_vsftpd_conf NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 pmin=$3 pmax=$4 tls=$5 pasv=${6:-}
    mkdir -p "$BASE/vsftpd-empty"
    chmod 755 "$BASE/vsftpd-empty"
    cat <<CONF
# Written by scripts/test-servers.sh: ftpsync test server (loopback only).
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=YES
seccomp_sandbox=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES
pasv_enable=YES
pasv_min_port=$pmin
pasv_max_port=$pmax
secure_chroot_dir=$BASE/vsftpd-empty
pam_service_name=vsftpd
userlist_enable=NO
xferlog_enable=YES
dual_log_enable=YES
xferlog_std_format=YES
xferlog_file=$BASE/$name-xfer.log
vsftpd_log_file=$BASE/$name.log
max_clients=0
max_per_ip=0
mdtm_write=YES
use_localtime=NO
CONF
    if [[ -n $pasv ]]; then echo "pasv_address=$pasv"; fi
    [[ $tls == none ]] && return
    cat <<CONF
# TLS for the login and every data connection, and data connections must resume the control
# connection's TLS session (require_ssl_reuse: vsftpd's default, stated here).
# certificate: $(cert_stamp)
ssl_enable=YES
require_ssl_reuse=YES
force_local_logins_ssl=YES
force_local_data_ssl=YES
rsa_cert_file=$TLS_DIR/server.pem
rsa_private_key_file=$TLS_DIR/server.key
debug_ssl=YES
CONF
    if [[ $tls == implicit ]]; then echo "implicit_ssl=YES"; fi
}

vsftpd_pids() { pgrep -x -f "$VS_BIN $BASE/$1.conf" 2>/dev/null || true; }

stop_vsftpd() { # stop_vsftpd NAME PORT
    local name=$1 pid
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
    pkill -x -f "$VS_BIN $BASE/$name.conf" 2>/dev/null || true
    wait_gone "$name" "$2" vsftpd_pids "$name"
    rm -f "$BASE/$name.pid"
}

start_vsftpd() { # start_vsftpd NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 tls=$5 conf=$BASE/$1.conf new pid
    new=$(write_vsftpd_conf "$@")
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid" && [[ -f $conf && $(cat "$conf") == "$new" ]] && still_serving "$port" "$tls"; then
        log "$name already running on 127.0.0.1:$port"
        return
    fi
    stop_vsftpd "$name" "$port"
    printf '%s\n' "$new" >"$conf"
    port_open "$port" && die "port $port is already taken by another program"
    log "starting $name on 127.0.0.1:$port"
    # background=YES: vsftpd forks and the listener outlives this script.
    if ! "$VS_BIN" "$conf" >"$BASE/$name.out" 2>&1; then
        cat "$BASE/$name.out" >&2
        die "$name exited with an error"
    fi
    wait_banner "$name" "$port" "$tls" "$BASE/$name.out" "$BASE/$name.log"
    # The listener is the oldest process with our command line (sessions are its children).
    pgrep -o -x -f "$VS_BIN $conf" >"$BASE/$name.pid" || die "$name listener not found"
}

# --- proftpd ---------------------------------------------------------------------------------

write_proftpd_conf() { # write_proftpd_conf NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 pmin=$3 pmax=$4 tls=$5 pasv=${6:-}
    cat <<CONF
# Written by scripts/test-servers.sh: ftpsync test server (loopback only).
# certificate: $(cert_stamp)
ServerName "ftpsync test proftpd"
ServerType standalone
DefaultAddress 127.0.0.1
SocketBindTight on
Port $port
PassivePorts $pmin $pmax
UseIPv6 off
User nobody
Group nogroup
Umask 022
MaxInstances 200
PidFile $BASE/$name.pid
ScoreboardFile $BASE/$name.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
RequireValidShell off
AuthOrder mod_auth_unix.c
DefaultRoot ~
AllowOverwrite on
AllowStoreRestart on
TimesGMT on
SystemLog $BASE/$name.log
TransferLog $BASE/$name-xfer.log
ModulePath $PRO_DIR/usr/lib/proftpd
LoadModule mod_tls.c
# HASH, XSHA256, XMD5...: what ftpsync --checksum asks for when the server has no manifest.
LoadModule mod_digest.c
TLSEngine on
TLSLog $BASE/$name-tls.log
TLSProtocol TLSv1.2 TLSv1.3
TLSRSACertificateFile $TLS_DIR/server.pem
TLSRSACertificateKeyFile $TLS_DIR/server.key
TLSVerifyClient off
TLSRenegotiate none
# TLS for the login and every data connection. Data connections must resume the control
# connection's TLS session: mod_tls's default, as no TLSOptions says NoSessionReuseRequired.
TLSRequired on
CONF
    if [[ $tls == implicit ]]; then echo "TLSOptions UseImplicitSSL"; fi
    if [[ -n $pasv ]]; then echo "MasqueradeAddress $pasv"; fi
}

proftpd_pids() {
    local pid
    pid=$(pidfile_pid "$BASE/$1.pid")
    alive "$pid" || return 0
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

stop_proftpd() { # stop_proftpd NAME PORT
    local name=$1 pid
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
    wait_gone "$name" "$2" proftpd_pids "$name"
    rm -f "$BASE/$name.pid"
}

start_proftpd() { # start_proftpd NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 tls=$5 conf=$BASE/$1.conf new pid
    new=$(write_proftpd_conf "$@")
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid" && [[ -f $conf && $(cat "$conf") == "$new" ]] && still_serving "$port" "$tls"; then
        log "$name already running on 127.0.0.1:$port"
        return
    fi
    stop_proftpd "$name" "$port"
    printf '%s\n' "$new" >"$conf"
    port_open "$port" && die "port $port is already taken by another program"
    log "starting $name on 127.0.0.1:$port"
    # Standalone proftpd forks into the background and writes its PidFile.
    if ! "$PRO_BIN" -c "$conf" >"$BASE/$name.out" 2>&1; then
        cat "$BASE/$name.out" >&2
        die "$name exited with an error"
    fi
    wait_banner "$name" "$port" "$tls" "$BASE/$name.out" "$BASE/$name.log" "$BASE/$name-tls.log"
}

# --- pure-ftpd -------------------------------------------------------------------------------

# pure-ftpd runs from flags alone: -c/-C (connections, per IP) at half the passive range, its cap.
pure_args() { # pure_args NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 pmin=$3 pmax=$4 pasv=${6:-} half
    half=$(((pmax - pmin + 1) / 2))
    printf '%s\n' -S "127.0.0.1,$port" -l unix -E -H -A -B -c "$half" -C "$half" -p "$pmin:$pmax" \
        -u 1 -g "$BASE/$name.pid" -O "clf:$BASE/$name-xfer.log"
    if [[ -n $pasv ]]; then printf '%s\n' -P "$pasv"; fi
}

pure_pids() {
    local pid
    pid=$(pidfile_pid "$BASE/$1.pid")
    alive "$pid" || return 0
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

stop_pureftpd() { # stop_pureftpd NAME PORT
    local name=$1 pid
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid"; then
        # The daemon is a session leader; its sessions share its process group.
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        pkill -P "$pid" 2>/dev/null || true
    fi
    wait_gone "$name" "$2" pure_pids "$name"
    rm -f "$BASE/$name.pid"
}

start_pureftpd() { # start_pureftpd NAME PORT PASSIVE_MIN PASSIVE_MAX TLS [PASV_ADDRESS]
    local name=$1 port=$2 argsfile=$BASE/$1.args args want pid
    mapfile -t args < <(pure_args "$@")
    want="${args[*]}"
    pid=$(pidfile_pid "$BASE/$name.pid")
    if alive "$pid" && [[ -f $argsfile && $(cat "$argsfile") == "$want" ]] && still_serving "$port" none; then
        log "$name already running on 127.0.0.1:$port"
        return
    fi
    stop_pureftpd "$name" "$port"
    port_open "$port" && die "port $port is already taken by another program"
    log "starting $name on 127.0.0.1:$port"
    # -B daemonizes; TZ=UTC so its LIST times are GMT like vsftpd's.
    if ! TZ=UTC "$PURE_BIN" "${args[@]}" >"$BASE/$name.out" 2>&1; then
        cat "$BASE/$name.out" >&2
        die "$name exited with an error"
    fi
    wait_banner "$name" "$port" none "$BASE/$name.out" "$BASE/$name-xfer.log"
    printf '%s\n' "$want" >"$argsfile"
}

wait_gone() { # wait_gone NAME PORT PIDS_FN [ARG]: up to 5 s, then SIGKILL
    local name=$1 port=$2 fn=$3 arg=${4:-} i pids
    for ((i = 0; i < 50; i++)); do
        pids=$($fn "$arg")
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
