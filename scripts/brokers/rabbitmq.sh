# RabbitMQ 4 in a Debian trixie chroot (Debian 12 only ships 3.10).
#
# A root built once by debootstrap is cached machine-wide in $RABBIT_CACHE;
# each state dir gets its own copy ($RABBIT_DIR/root), so the node's data
# (/var/lib/rabbitmq inside it) lives in the state dir and survives restarts.
# Every process of the node is found by its /proc/PID/root pointing at that copy.
#
# /dev is NOT bind-mounted: debootstrap already creates the device nodes, and a
# bind-mounted /dev inside the repository would let a plain `rm -rf .brokers`
# delete the host's device nodes. Only /proc is mounted, and only while running.
# shellcheck shell=bash

RABBIT_CACHE=${REPID_RABBITMQ_ROOT_CACHE:-/var/cache/repid/rabbitmq-root-4}
RABBIT_SUITE=${REPID_RABBITMQ_SUITE:-trixie}
RABBIT_DIR=''
RROOT=''

rabbitmq_init() {
    RABBIT_DIR="$STATE/rabbitmq"
    RROOT="$RABBIT_DIR/root"
}

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (chroot, mount)"; }

# Pids of all processes running inside our chroot.
rabbit_pids() {
    [ -d "$RROOT" ] || return 0
    find /proc -mindepth 2 -maxdepth 2 -name root -lname "$RROOT" 2>/dev/null |
        cut -d/ -f3 | grep -vx "$$" || true
}

rabbit_beam_pid() {
    local pid
    for pid in $(rabbit_pids); do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = beam.smp ]; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# The Debian mirror this machine's apt uses (first non-security, non-updates entry).
debian_mirror() {
    local url
    if [ -n "${REPID_DEBIAN_MIRROR:-}" ]; then
        echo "$REPID_DEBIAN_MIRROR"
        return
    fi
    url=$(awk 'BEGIN { RS = "" } {
            uri = ""; ok = 0
            n = split($0, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] ~ /^URIs:/) { split(lines[i], f, " "); uri = f[2] }
                if (lines[i] ~ /^Suites:/ && lines[i] !~ /-security/) ok = 1
            }
            if (ok && uri ~ /debian/ && uri !~ /security/) { print uri; exit }
        }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    if [ -z "$url" ]; then
        url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) {
                    if ($i ~ /debian/ && $i !~ /security/) print $i; break } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
    fi
    echo "${url:-http://deb.debian.org/debian}"
}

rabbit_ensure_cache() {
    local lockdir tmp mirror log old version
    [ -f "$RABBIT_CACHE/.repid-root-ok" ] && return 0
    lockdir=$(dirname "$RABBIT_CACHE")
    mkdir -p "$lockdir"
    # Serialise builds across state dirs; a second caller waits and reuses.
    exec 8>"$lockdir/.rabbitmq-root.lock"
    if ! flock -n 8; then
        say "rabbitmq: another process is building $RABBIT_CACHE, waiting"
        flock -w 900 8 || die "rabbitmq: timed out waiting for the root build lock"
    fi
    if [ -f "$RABBIT_CACHE/.repid-root-ok" ]; then
        exec 8>&-
        return 0
    fi
    command -v debootstrap >/dev/null || apt_install debootstrap
    # A half-built root from an interrupted run is never reused.
    for old in "$RABBIT_CACHE" "$RABBIT_CACHE".tmp.*; do
        [ -e "$old" ] && safe_rm_tree "$old"
    done
    tmp=$(mktemp -d "$RABBIT_CACHE.tmp.XXXXXX")
    log="$lockdir/debootstrap.log"
    mirror=$(debian_mirror)
    say "rabbitmq: building a Debian $RABBIT_SUITE root with rabbitmq-server from $mirror"
    say "rabbitmq: (about a minute, once per machine; log: $log)"
    local t0=$EPOCHREALTIME
    if ! debootstrap --variant=minbase --include=rabbitmq-server "$RABBIT_SUITE" "$tmp" "$mirror" \
        >"$log" 2>&1 8>&- 9>&-; then
        log_tail "$log" "$tmp/debootstrap/debootstrap.log"
        safe_rm_tree "$tmp"
        die "rabbitmq: debootstrap failed"
    fi
    unmount_under "$tmp" || die "rabbitmq: debootstrap left mounts under $tmp"
    version=$(find "$tmp/usr/lib/rabbitmq/lib" -maxdepth 1 -name 'rabbitmq_server-4.*' \
        -printf '%f\n' 2>/dev/null | head -n1)
    if [ -z "$version" ]; then
        safe_rm_tree "$tmp"
        die "rabbitmq: the $RABBIT_SUITE root has no RabbitMQ 4.x"
    fi
    # Nothing here is used at run time; a smaller root is faster to copy.
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* \
        "$tmp"/usr/share/doc/* "$tmp"/usr/share/locale/* "$tmp"/usr/share/man/*
    echo "$version" >"$tmp/.repid-root-ok"
    mv -T "$tmp" "$RABBIT_CACHE"
    exec 8>&-
    say "rabbitmq: built root with ${version#rabbitmq_server-} in $(elapsed "$t0")"
}

# Our own copy of the cached root (copied whole, then renamed into place).
rabbit_ensure_root() {
    [ -f "$RROOT/.repid-root-ok" ] && return 0
    safe_rm_tree "$RROOT"
    safe_rm_tree "$RROOT.tmp"
    mkdir -p "$RABBIT_DIR"
    say "rabbitmq: copying the cached root into $RROOT"
    cp -a "$RABBIT_CACHE" "$RROOT.tmp"
    mv -T "$RROOT.tmp" "$RROOT"
}

rabbit_write_config() {
    local etc="$RROOT/etc/rabbitmq"
    mkdir -p "$etc"
    cat >"$etc/rabbitmq.conf" <<EOF
# generated by scripts/brokers.sh at each start
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MGMT_PORT
distribution.listener.interface = 127.0.0.1
# Queue counters in the management API refresh this often (default 5 s).
collect_statistics_interval = 500
log.file.level = info
log.console = false
EOF
    cat >"$etc/rabbitmq-env.conf" <<EOF
# generated by scripts/brokers.sh at each start
NODENAME=rabbit@localhost
DIST_PORT=$RABBITMQ_DIST_PORT
ERL_EPMD_PORT=$RABBITMQ_EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1
# No scheduler busy-waiting: the machine is small and shared.
SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
EOF
    # Queue counters reach the management API through the quorum queue tick
    # (quorum_tick_interval) and the metrics collectors, whose period is the
    # finest sample granularity: 5 s each by default, 1 s here so tests that
    # poll message counts do not wait long.
    cat >"$etc/advanced.config" <<EOF
[{rabbit, [{quorum_tick_interval, 1000}]},
 {rabbitmq_management, [{sample_retention_policies,
    [{global, [{60, 1}, {3600, 60}]}, {basic, [{60, 1}, {3600, 60}]}, {detailed, [{10, 1}]}]}]}].
EOF
    echo '[rabbitmq_management].' >"$etc/enabled_plugins"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$RROOT/etc/hosts"
}

rabbit_mount() {
    local spec name major minor
    for spec in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
        IFS=: read -r name major minor <<<"$spec"
        if [ ! -c "$RROOT/dev/$name" ]; then
            rm -f "$RROOT/dev/$name"
            mknod -m 666 "$RROOT/dev/$name" c "$major" "$minor" ||
                die "rabbitmq: cannot create $RROOT/dev/$name"
        fi
    done
    mountpoint -q "$RROOT/proc" || mount -t proc -o nosuid,nodev,noexec proc "$RROOT/proc"
}

# Make sure our root exists (no-op when the node is already running).
rabbitmq_prepare() {
    rabbit_beam_pid >/dev/null && return 0
    need_root "rabbitmq"
    rabbit_ensure_cache
    rabbit_ensure_root
}

rabbitmq_spawn() {
    local strict=$1 pid leftovers
    RABBIT_SPAWNED=''
    if pid=$(rabbit_beam_pid); then
        say "rabbitmq: already running (pid $pid, amqp port $AMQP_PORT)"
        # Still check that it answers (cheap when healthy).
        RABBIT_SPAWNED=$pid RABBIT_T0=$EPOCHREALTIME
        return 0
    fi
    rabbitmq_prepare
    # epmd and helpers left behind by a crash or `kill`.
    leftovers=$(rabbit_pids)
    # shellcheck disable=SC2086
    [ -z "$leftovers" ] || term_then_kill 10 $leftovers
    ensure_ports "$strict" AMQP_PORT RABBITMQ_MGMT_PORT RABBITMQ_EPMD_PORT RABBITMQ_DIST_PORT
    rabbit_write_config
    rabbit_mount
    printf '=== %s start\n' "$(date -u +%FT%TZ)" >>"$RABBIT_DIR/rabbitmq.out"
    say "rabbitmq: starting on 127.0.0.1:$AMQP_PORT (management $RABBITMQ_MGMT_PORT)"
    RABBIT_T0=$EPOCHREALTIME
    spawn "$RABBIT_DIR/rabbitmq.out" chroot "$RROOT" /usr/bin/env -i \
        HOME=/var/lib/rabbitmq PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    RABBIT_SPAWNED=$SPAWNED_PID
}

rabbitmq_await() {
    local mgmt="http://127.0.0.1:$RABBITMQ_MGMT_PORT"
    [ -n "${RABBIT_SPAWNED:-}" ] || {
        touch "$RABBIT_DIR/enabled"
        return 0
    }
    # The management API answers only once the node and its plugins have booted;
    # the AMQP listener check then covers the listener itself.
    if ! netcheck wait-http "$mgmt/api/overview" 180 --auth guest:guest --pid "$RABBIT_SPAWNED" ||
        ! netcheck wait-tcp "$AMQP_PORT" 30 --pid "$RABBIT_SPAWNED"; then
        log_tail "$RABBIT_DIR/rabbitmq.out" "$RROOT/var/log/rabbitmq/rabbit@localhost.log"
        rabbitmq_stop quiet
        warn "rabbitmq: node did not become ready"
        return 1
    fi
    touch "$RABBIT_DIR/enabled"
    say "rabbitmq: ready on 127.0.0.1:$AMQP_PORT (management $mgmt) in $(elapsed "$RABBIT_T0")"
}

rabbitmq_stop() {
    local pid rest
    if pid=$(rabbit_beam_pid); then
        need_root "rabbitmq stop"
        [ "${1:-}" = quiet ] || say "rabbitmq: stopping (pid $pid)"
        # SIGTERM is a graceful shutdown for RabbitMQ (queues are closed cleanly).
        term_then_kill 60 "$pid"
    else
        [ "${1:-}" = quiet ] || say "rabbitmq: not running"
    fi
    rest=$(rabbit_pids)
    # shellcheck disable=SC2086
    [ -z "$rest" ] || term_then_kill 10 $rest
    if [ -n "$(mounts_under "$RROOT")" ]; then
        need_root "rabbitmq stop"
        unmount_under "$RROOT" || die "rabbitmq: could not unmount everything under $RROOT"
    fi
}

rabbitmq_kill() {
    local pids
    pids=$(rabbit_pids)
    if [ -z "$pids" ]; then
        say "rabbitmq: not running"
        return 0
    fi
    say "rabbitmq: SIGKILL pids $(tr '\n' ' ' <<<"$pids")"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 10 $pids || warn "rabbitmq: some processes are still alive"
}

rabbitmq_status() {
    local pid
    if pid=$(rabbit_beam_pid); then
        printf '%-9s running  pid %-8s amqp://127.0.0.1:%s/ management http://127.0.0.1:%s\n' \
            rabbitmq "$pid" "$AMQP_PORT" "$RABBITMQ_MGMT_PORT"
    else
        printf '%-9s stopped\n' rabbitmq
    fi
}
