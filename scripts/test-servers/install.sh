# shellcheck shell=bash
# Sourced by scripts/test-servers.sh: installing the servers and tools, the TLS certificates,
# the FTP users. Uses the variables the main script sets.

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
