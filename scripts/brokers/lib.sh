# Shared helpers for scripts/brokers.sh (sourced, not executed).
# shellcheck shell=bash
# Variables set here are read by the other sourced files:
# shellcheck disable=SC2034

say() { printf '[brokers] %s\n' "$*"; }
warn() { printf '[brokers] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[brokers] ERROR: %s\n' "$*" >&2
    exit 1
}

# Seconds since $1 (an $EPOCHREALTIME value), one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

netcheck() { "$PYTHON" "$BROKERS_LIB/netcheck.py" "$@"; }

# Print the last lines of each existing log file to stderr.
log_tail() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        printf '[brokers] ---- last lines of %s ----\n' "$f" >&2
        tail -n 40 "$f" >&2
        printf '[brokers] ---- end of %s ----\n' "$f" >&2
    done
}

# --- processes ---------------------------------------------------------------

# These run in loops over /proc, so they use bash builtins only (no forks).
pid_alive() {
    local line state
    [ -n "${1:-}" ] || return 1
    { IFS= read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    state=${line##*) }
    state=${state%% *}
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

pid_cmdline() {
    local -a args=()
    { mapfile -d '' -t args <"/proc/$1/cmdline"; } 2>/dev/null || true
    printf '%s' "${args[*]}"
}

# pid_matches PID WORD...: process alive and its command line contains every WORD.
# Guards against acting on a recycled pid from a stale pidfile.
pid_matches() {
    local pid=$1 cmd w
    shift
    pid_alive "$pid" || return 1
    cmd=$(pid_cmdline "$pid")
    for w in "$@"; do
        [[ $cmd == *"$w"* ]] || return 1
    done
}

# find_pid WORD...: first live process whose command line contains every WORD.
find_pid() {
    local d pid cmd w ok
    local -a args
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = "$$" ] && continue
        args=()
        { mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null || continue
        cmd="${args[*]}"
        ok=1
        for w in "$@"; do
            [[ $cmd == *"$w"* ]] || { ok=0; break; }
        done
        if [ $ok = 1 ] && pid_alive "$pid"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# wait_gone SECONDS PID...: true once none of the pids is alive.
wait_gone() {
    local deadline pid any
    deadline=$(($(date +%s) + $1))
    shift
    while :; do
        any=0
        for pid in "$@"; do pid_alive "$pid" && any=1; done
        [ $any = 0 ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# term_then_kill SECONDS PID...: SIGTERM, wait, then SIGKILL what is left.
term_then_kill() {
    local secs=$1
    shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    if ! wait_gone "$secs" "$@"; then
        warn "still running after ${secs}s, sending SIGKILL to $*"
        kill -KILL "$@" 2>/dev/null || true
        wait_gone 10 "$@" || warn "processes $* did not exit"
    fi
}

# spawn LOGFILE CMD...: run CMD detached from us (own session, stdin from
# /dev/null, output to LOGFILE, our lock fds closed so a broker never holds the
# state lock) and set SPAWNED_PID.
spawn() {
    local log=$1
    shift
    setsid nohup "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
    SPAWNED_PID=$!
}

# --- ports ---------------------------------------------------------------------

# All ports live in one file so restart reuses them.
load_ports() {
    REDIS_PORT='' AMQP_PORT='' RABBITMQ_MGMT_PORT='' RABBITMQ_EPMD_PORT=''
    RABBITMQ_DIST_PORT='' PUBSUB_PORT=''
    # shellcheck disable=SC1091,SC2153
    [ -f "$STATE/ports" ] && . "$STATE/ports"
    return 0
}

save_ports() {
    local k
    {
        for k in REDIS_PORT AMQP_PORT RABBITMQ_MGMT_PORT RABBITMQ_EPMD_PORT \
            RABBITMQ_DIST_PORT PUBSUB_PORT; do
            printf '%s=%s\n' "$k" "${!k}"
        done
    } >"$STATE/ports.tmp"
    mv -f "$STATE/ports.tmp" "$STATE/ports"
}

# ensure_ports STRICT VAR...: keep each recorded port if it is free; otherwise
# pick a fresh one (STRICT=0) or wait for it and fail (STRICT=1, for restart,
# where tests rely on the address staying the same).
ensure_ports() {
    local strict=$1 var port tries need=()
    shift
    for var in "$@"; do
        port=${!var}
        if [ -n "$port" ]; then
            tries=0
            until netcheck is-free "$port"; do
                if [ "$strict" = 1 ] && [ $tries -lt 100 ]; then
                    tries=$((tries + 1))
                    sleep 0.2
                    continue
                fi
                [ "$strict" = 1 ] && die "port $port ($var) is taken by another process; cannot restart on the same port"
                say "port $port ($var) is taken by another process, picking a new one"
                port=''
                break
            done
        fi
        [ -n "$port" ] || need+=("$var")
        printf -v "$var" '%s' "$port"
    done
    if [ ${#need[@]} -gt 0 ]; then
        local fresh i=0
        read -r -a fresh <<<"$(netcheck free-ports ${#need[@]})"
        for var in "${need[@]}"; do
            printf -v "$var" '%s' "${fresh[$i]}"
            i=$((i + 1))
        done
    fi
    save_ports
}

# --- packages ------------------------------------------------------------------

# apt_install PKG...: install, running `apt-get update` only if the first try
# fails (fresh machines have no package lists). Waits for other apt users.
# Our lock fds are closed for apt: a package's postinst may start a daemon
# (Debian's redis-server starts the system service), which must not inherit them.
apt_install() {
    local opts=(-y -q -o DPkg::Lock::Timeout=600)
    say "installing $* with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >"$STATE/apt.log" 2>&1 8>&- 9>&-; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 \
            >>"$STATE/apt.log" 2>&1 8>&- 9>&- || true
        if ! DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" \
            >>"$STATE/apt.log" 2>&1 8>&- 9>&-; then
            log_tail "$STATE/apt.log"
            die "apt-get install $* failed"
        fi
    fi
}

# --- mounts --------------------------------------------------------------------

# Mount points at or below DIR, deepest first (mountinfo escapes spaces as \040).
mounts_under() {
    local dir=$1 mp
    awk '{ print $5 }' /proc/self/mountinfo | while read -r mp; do
        mp=$(printf '%b' "$mp")
        if [ "$mp" = "$dir" ] || [[ $mp == "$dir"/* ]]; then echo "$mp"; fi
    done | sort -r
}

unmount_under() {
    local mp
    mounts_under "$1" | while read -r mp; do
        umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || warn "could not unmount $mp"
    done
    [ -z "$(mounts_under "$1")" ]
}

# safe_rm_tree DIR: remove DIR, but never through a mount point (a bind-mounted
# /dev or /proc below it would otherwise be wiped on the host).
safe_rm_tree() {
    [ -e "$1" ] || return 0
    unmount_under "$1" || die "refusing to delete $1: something is still mounted below it"
    rm -rf --one-file-system -- "$1"
}
