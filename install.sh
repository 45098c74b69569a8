#!/bin/sh
# skiff installer: installs the skiff binary, its runtime prerequisites, a
# service (systemd or openrc) with its env file, and skiff-killall.sh and
# skiff-uninstall.sh; then starts the service.
#
#   curl -sfL https://<host>/install.sh | sh -
#   curl -sfL https://<host>/install.sh | SKIFF_URL=https://server:6443 SKIFF_TOKEN=K10... sh -
#   ./install.sh                          # from a source checkout: builds skiff with cargo
#   ./install.sh server --disable-agent   # arguments are the command skiff runs
#
# Environment (k3s' installer conventions):
#   INSTALL_SKIFF_VERSION         release to download (default: latest)
#   INSTALL_SKIFF_DOWNLOAD_URL    base URL of releases: <url>/<version>/skiff-<arch>
#                                 and <url>/<version>/sha256sum-<arch>.txt
#   INSTALL_SKIFF_EXEC            command and flags for skiff (or script arguments)
#   INSTALL_SKIFF_SKIP_DOWNLOAD   true: use the skiff already in the bin dir
#   INSTALL_SKIFF_SKIP_DEPS       true: do not install containerd, runc, ...
#   INSTALL_SKIFF_SKIP_ENABLE     true: do not enable the service (implies SKIP_START)
#   INSTALL_SKIFF_SKIP_START      true: do not start or restart the service
#   INSTALL_SKIFF_BIN_DIR         where skiff and the scripts go (default /usr/local/bin)
#   INSTALL_SKIFF_SYSTEMD_DIR     where the unit goes (default /etc/systemd/system)
#   INSTALL_SKIFF_NAME            service name (default skiff, or skiff-agent)
#   SKIFF_URL, SKIFF_TOKEN        join a server: installs an agent
#   SKIFF_*                       written to the service's env file
set -e
set -o noglob

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
    echo "[ERROR] $*" >&2
    exit 1
}

is_true() { [ "$1" = true ] || [ "$1" = 1 ] || [ "$1" = yes ]; }

# --- where things go ---------------------------------------------------------
setup_env() {
    BIN_DIR=${INSTALL_SKIFF_BIN_DIR:-/usr/local/bin}
    SYSTEMD_DIR=${INSTALL_SKIFF_SYSTEMD_DIR:-/etc/systemd/system}
    if [ -z "${INSTALL_SKIFF_EXEC:-}" ] && [ $# -gt 0 ]; then
        INSTALL_SKIFF_EXEC="$*"
    fi
    CMD_SKIFF=$(echo "${INSTALL_SKIFF_EXEC:-}" | awk '{print $1}')
    case "$CMD_SKIFF" in
        server | agent) CMD_ARGS=$(echo "$INSTALL_SKIFF_EXEC" | cut -s -d' ' -f2-) ;;
        *)
            CMD_ARGS=${INSTALL_SKIFF_EXEC:-}
            if [ -n "${SKIFF_URL:-}" ]; then CMD_SKIFF=agent; else CMD_SKIFF=server; fi
            ;;
    esac
    if [ "$CMD_SKIFF" = agent ]; then
        [ -n "${SKIFF_URL:-}" ] || fatal "an agent needs SKIFF_URL (the server, https://HOST:6443)"
        [ -n "${SKIFF_TOKEN:-}" ] || [ -n "${SKIFF_TOKEN_FILE:-}" ] ||
            fatal "an agent needs SKIFF_TOKEN or SKIFF_TOKEN_FILE (see 'skiff token create' on the server)"
        NAME_DEFAULT=skiff-agent
    else
        NAME_DEFAULT=skiff
    fi
    SERVICE_NAME=${INSTALL_SKIFF_NAME:-$NAME_DEFAULT}
    case "$SERVICE_NAME" in
        *[!A-Za-z0-9_.-]*) fatal "INSTALL_SKIFF_NAME may only hold letters, digits, '.', '_' and '-'" ;;
    esac
    if is_true "${INSTALL_SKIFF_SKIP_ENABLE:-}"; then INSTALL_SKIFF_SKIP_START=true; fi
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && SUDO=sudo
    fi
    CHANGED=false
}

# --- writing files only when they change --------------------------------------
# put FILE MODE: the content on stdin becomes FILE unless it is already so.
put() {
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        $SUDO chmod "$2" "$1"
        return 0
    fi
    $SUDO mkdir -p "$(dirname "$1")"
    $SUDO cp "$tmp" "$1.tmp.$$"
    $SUDO chmod "$2" "$1.tmp.$$"
    $SUDO mv -f "$1.tmp.$$" "$1"
    rm -f "$tmp"
    info "wrote $1"
    CHANGED=true
}

# --- init system ---------------------------------------------------------------
detect_init() {
    if [ -n "${INSTALL_SKIFF_SYSTEMD_DIR:-}" ] || [ -d /run/systemd/system ] || command -v systemctl >/dev/null 2>&1; then
        INIT=systemd
    elif [ -x /sbin/openrc-run ]; then
        INIT=openrc
    elif is_true "${INSTALL_SKIFF_SKIP_ENABLE:-}"; then
        INIT=none
    else
        fatal "neither systemd nor openrc was found: set INSTALL_SKIFF_SKIP_ENABLE=true and run '$BIN_DIR/skiff $CMD_SKIFF' yourself"
    fi
}

# --- prerequisites ---------------------------------------------------------------
install_deps() {
    is_true "${INSTALL_SKIFF_SKIP_DEPS:-}" && return 0
    missing=
    for p in containerd runc iptables conntrack; do
        command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    cni=false
    for d in /usr/lib/cni /opt/cni/bin; do
        [ -x "$d/bridge" ] && [ -x "$d/host-local" ] && cni=true
    done
    [ "$cni" = true ] || missing="$missing cni"
    [ -z "$missing" ] && return 0
    info "installing the missing prerequisites:$missing"
    if command -v apt-get >/dev/null 2>&1; then
        pkgs=$(echo "$missing" | sed 's/cni/containernetworking-plugins/')
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs ||
            { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs; }
    elif command -v dnf >/dev/null 2>&1; then
        $SUDO dnf install -y $(echo "$missing" | sed 's/cni/containernetworking-plugins/; s/conntrack/conntrack-tools/')
    elif command -v apk >/dev/null 2>&1; then
        $SUDO apk add --no-cache $(echo "$missing" | sed 's/cni/cni-plugins/; s/conntrack/conntrack-tools/')
    elif command -v zypper >/dev/null 2>&1; then
        $SUDO zypper --non-interactive install $(echo "$missing" | sed 's/cni/cni-plugins/; s/conntrack/conntrack-tools/')
    else
        fatal "no apt-get, dnf, apk or zypper: install$missing yourself (or set INSTALL_SKIFF_SKIP_DEPS=true)"
    fi
}

# --- the binary --------------------------------------------------------------------
arch() {
    case $(uname -m) in
        x86_64 | amd64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        armv7*) echo arm ;;
        *) fatal "unsupported architecture $(uname -m)" ;;
    esac
}

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -qO "$2" "$1"
    else
        fatal "neither curl nor wget is installed"
    fi
}

install_binary() {
    if is_true "${INSTALL_SKIFF_SKIP_DOWNLOAD:-}"; then
        [ -x "$BIN_DIR/skiff" ] || fatal "INSTALL_SKIFF_SKIP_DOWNLOAD is set but $BIN_DIR/skiff does not exist"
        info "using the existing $BIN_DIR/skiff"
        return 0
    fi
    src=$(cd "$(dirname "$0")" 2>/dev/null && pwd || true)
    if [ -z "${INSTALL_SKIFF_DOWNLOAD_URL:-}" ] && [ -n "$src" ] && [ -f "$src/Cargo.toml" ] && grep -q '^name = "skiff"' "$src/Cargo.toml"; then
        command -v cargo >/dev/null 2>&1 || fatal "building from $src needs cargo (https://rustup.rs)"
        info "building skiff from the checkout in $src"
        (cd "$src" && cargo build --release --locked)
        built="${CARGO_TARGET_DIR:-$src/target}/release/skiff"
        put "$BIN_DIR/skiff" 0755 <"$built"
        return 0
    fi
    [ -n "${INSTALL_SKIFF_DOWNLOAD_URL:-}" ] ||
        fatal "no skiff release to download: set INSTALL_SKIFF_DOWNLOAD_URL, or run install.sh from a source checkout"
    a=$(arch)
    version=${INSTALL_SKIFF_VERSION:-latest}
    dir=$(mktemp -d)
    info "downloading skiff $version for $a"
    fetch "$INSTALL_SKIFF_DOWNLOAD_URL/$version/sha256sum-$a.txt" "$dir/sums" || fatal "cannot download the checksums"
    fetch "$INSTALL_SKIFF_DOWNLOAD_URL/$version/skiff-$a" "$dir/skiff" || fatal "cannot download the binary"
    want=$(awk -v f="skiff-$a" '$2 == f || $2 == "*"f {print $1}' "$dir/sums")
    got=$(sha256sum "$dir/skiff" | awk '{print $1}')
    [ -n "$want" ] || fatal "the checksums do not list skiff-$a"
    [ "$want" = "$got" ] || fatal "the download's sha256 $got is not the published $want"
    put "$BIN_DIR/skiff" 0755 <"$dir/skiff"
    rm -rf "$dir"
}

# --- service files ------------------------------------------------------------------
env_file() {
    # Every SKIFF_* variable (and proxy settings), as k3s does.
    env | grep -E '^(SKIFF_|HTTPS?_PROXY=|NO_PROXY=)' | sort | sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/" || true
}

exec_line() {
    line="$BIN_DIR/skiff $CMD_SKIFF"
    [ -n "$CMD_ARGS" ] && line="$line $CMD_ARGS"
    echo "$line"
}

write_systemd() {
    unit="$SYSTEMD_DIR/$SERVICE_NAME.service"
    env_file | put "$unit.env" 0600
    put "$unit" 0644 <<EOF
[Unit]
Description=skiff, a lightweight Kubernetes ($CMD_SKIFF)
Documentation=https://github.com/skiff-project/skiff
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$unit.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=$(exec_line)
EOF
}

write_openrc() {
    script=/etc/init.d/$SERVICE_NAME
    env_file | sed 's/^/export /' | put "$script.env" 0600
    put "$script" 0755 <<EOF
#!/sbin/openrc-run
description="skiff, a lightweight Kubernetes ($CMD_SKIFF)"
depend() { need net; after firewall; }
supervisor=supervise-daemon
command="$BIN_DIR/skiff"
command_args="$CMD_SKIFF $CMD_ARGS"
output_log="/var/log/$SERVICE_NAME.log"
error_log="/var/log/$SERVICE_NAME.log"
respawn_delay=5
start_pre() { [ -f "$script.env" ] && . "$script.env"; return 0; }
EOF
}

# --- killall and uninstall -------------------------------------------------------------
write_killall() {
    put "$BIN_DIR/skiff-killall.sh" 0755 <<'EOF'
#!/bin/sh
# Stops skiff and everything it started, and removes its network state:
# the service, containerd and its shims, mounts, interfaces, iptables
# chains and network namespaces. Data directories stay (skiff-uninstall.sh
# removes them).
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
DATA_DIR=${SKIFF_DATA_DIR:-/var/lib/skiff}
for unit in skiff skiff-agent; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$unit" 2>/dev/null; fi
    if [ -x "/etc/init.d/$unit" ]; then "/etc/init.d/$unit" stop 2>/dev/null; fi
done
pkill -TERM -x skiff 2>/dev/null
# containerd and shims started for skiff's data dir.
pids() {
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        case "$cmd" in
            *"$DATA_DIR/agent/containerd"* | *containerd-shim*"/run/skiff/"* | *containerd-shim*"$DATA_DIR"*) echo "${p#/proc/}" ;;
        esac
    done
}
for sig in TERM KILL; do
    for p in $(pids); do kill -s "$sig" "$p" 2>/dev/null; done
    sleep 1
done
# Mounts under skiff's directories, deepest first.
for m in $(awk -v d="$DATA_DIR" '$2 ~ "^"d || $2 ~ "^/run/skiff" || $2 ~ "^/run/netns/cni-" {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null
done
# Network namespaces of pods.
if command -v ip >/dev/null 2>&1; then
    for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns"; done
    for link in skiff0 skiff.1 skiff-dns; do ip link delete "$link" 2>/dev/null; done
    # host-gw routes (skiff's route protocol 83); skiff.1's went with it.
    ip route flush proto 83 2>/dev/null
    # The cluster DNS address, on lo where the kernel has no dummy driver.
    ip -4 addr flush dev lo label lo:skiff-dns 2>/dev/null
    for cidr in "${SKIFF_CLUSTER_CIDR:-10.42.0.0/16}" "${SKIFF_SERVICE_CIDR:-10.43.0.0/16}"; do
        ip route del unreachable "$cidr" 2>/dev/null
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^veth/ {split($2, a, "@"); print a[1]}'); do
        [ -e "/sys/class/net/$link/master" ] && [ "$(basename "$(readlink "/sys/class/net/$link/master")")" = skiff0 ] && ip link delete "$link"
    done
fi
# The service proxy's KUBE-* chains and their jumps, and the node's network
# state, removed by skiff itself (the same code as its tests' cleanup).
SKIFF_BIN=$(dirname "$0")/skiff
[ -x "$SKIFF_BIN" ] && "$SKIFF_BIN" cleanup-network 2>/dev/null
# iptables: every SKIFF-* chain and every rule that mentions one.
for save in iptables-save ip6tables-save; do
    command -v "$save" >/dev/null 2>&1 || continue
    restore=$(echo "$save" | sed 's/-save/-restore/')
    if "$save" | grep -q SKIFF; then
        "$save" | grep -v SKIFF | "$restore"
    fi
done
rm -rf /run/skiff
exit 0
EOF
}

write_uninstall() {
    put "$BIN_DIR/skiff-uninstall.sh" 0755 <<EOF
#!/bin/sh
# Removes skiff from this machine: stops it (skiff-killall.sh), removes the
# service, the binary, these scripts and skiff's data and config.
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
"$BIN_DIR/skiff-killall.sh"
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable "$SERVICE_NAME" 2>/dev/null
    systemctl reset-failed "$SERVICE_NAME" 2>/dev/null
fi
if [ -x /sbin/rc-update ]; then rc-update delete "$SERVICE_NAME" default 2>/dev/null; fi
rm -f "$SYSTEMD_DIR/$SERVICE_NAME.service" "$SYSTEMD_DIR/$SERVICE_NAME.service.env"
rm -f "/etc/init.d/$SERVICE_NAME" "/etc/init.d/$SERVICE_NAME.env"
if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null; fi
rm -rf "\${SKIFF_DATA_DIR:-/var/lib/skiff}" /etc/skiff /run/skiff
rm -f "$BIN_DIR/skiff" "$BIN_DIR/skiff-killall.sh"
rm -f "\$0"
EOF
}

# --- enable and start ----------------------------------------------------------------------
start_service() {
    if is_true "${INSTALL_SKIFF_SKIP_ENABLE:-}"; then
        info "INSTALL_SKIFF_SKIP_ENABLE: not enabling $SERVICE_NAME; run '$(exec_line)'"
        return 0
    fi
    case $INIT in
        systemd)
            if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                $SUDO systemctl daemon-reload
                $SUDO systemctl enable "$SERVICE_NAME" >/dev/null
            else
                warn "systemd is not running here: the unit is written but not enabled"
                return 0
            fi
            ;;
        openrc) $SUDO rc-update add "$SERVICE_NAME" default >/dev/null ;;
    esac
    if is_true "${INSTALL_SKIFF_SKIP_START:-}"; then
        info "INSTALL_SKIFF_SKIP_START: not starting $SERVICE_NAME"
        return 0
    fi
    if [ "$CHANGED" = false ]; then
        info "nothing changed; $SERVICE_NAME keeps running"
        case $INIT in
            systemd) $SUDO systemctl start "$SERVICE_NAME" ;;
            openrc) $SUDO rc-service "$SERVICE_NAME" start ;;
        esac
        return 0
    fi
    info "starting $SERVICE_NAME"
    case $INIT in
        systemd) $SUDO systemctl restart "$SERVICE_NAME" ;;
        openrc) $SUDO rc-service "$SERVICE_NAME" restart ;;
    esac
}

main() {
    setup_env "$@"
    detect_init
    install_deps
    install_binary
    case $INIT in
        systemd) write_systemd ;;
        openrc) write_openrc ;;
        none) ;;
    esac
    write_killall
    write_uninstall
    start_service
    if [ "$CHANGED" = true ]; then info "skiff $CMD_SKIFF installed"; else info "skiff $CMD_SKIFF is up to date"; fi
}

main "$@"
