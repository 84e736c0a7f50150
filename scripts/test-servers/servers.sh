# shellcheck shell=bash
# Sourced by scripts/test-servers.sh: writing the configuration of, starting and stopping each
# kind of server (vsftpd, proftpd, pure-ftpd). Uses the variables the main script sets.

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
