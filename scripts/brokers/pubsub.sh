# Google Cloud Pub/Sub emulator (Java). It keeps everything in memory: a
# restart loses all topics, subscriptions and messages, by design.
# shellcheck shell=bash

PUBSUB_DIR=''
PUBSUB_BIN=${REPID_PUBSUB_EMULATOR:-/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator}

pubsub_init() { PUBSUB_DIR="$STATE/pubsub"; }

pubsub_pid() {
    local pid
    [ -n "$PUBSUB_PORT" ] || return 1
    pid=$(cat "$PUBSUB_DIR/pubsub.pid" 2>/dev/null) || return 1
    pid_matches "$pid" cloud-pubsub-emulator "--port=$PUBSUB_PORT" && echo "$pid"
}

pubsub_spawn() {
    local strict=$1 pid
    PUBSUB_SPAWNED=''
    if pid=$(pubsub_pid); then
        say "pubsub: already running (pid $pid, port $PUBSUB_PORT)"
        # Still check that it answers (cheap when healthy).
        PUBSUB_SPAWNED=$pid PUBSUB_T0=$EPOCHREALTIME
        return 0
    fi
    if [ ! -x "$PUBSUB_BIN" ]; then
        # The emulator comes from Google's apt repository, which only works where
        # that repository is configured and reachable.
        say "pubsub: emulator not found at $PUBSUB_BIN (REPID_PUBSUB_EMULATOR), trying apt"
        apt_install google-cloud-cli-pubsub-emulator
    fi
    command -v java >/dev/null || apt_install default-jre-headless
    ensure_ports "$strict" PUBSUB_PORT
    mkdir -p "$PUBSUB_DIR"
    printf '=== %s start on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$PUBSUB_PORT" >>"$PUBSUB_DIR/pubsub.log"
    say "pubsub: starting emulator on 127.0.0.1:$PUBSUB_PORT"
    PUBSUB_T0=$EPOCHREALTIME
    # Serial GC and a capped heap: the machine is small and shared.
    JAVA_OPTS="${REPID_PUBSUB_JAVA_OPTS:--Xmx1g -XX:+UseSerialGC}" \
        spawn "$PUBSUB_DIR/pubsub.log" "$PUBSUB_BIN" --host=127.0.0.1 --port="$PUBSUB_PORT"
    PUBSUB_SPAWNED=$SPAWNED_PID
    # The launcher script execs java, so this is normally already the JVM's pid.
    echo "$PUBSUB_SPAWNED" >"$PUBSUB_DIR/pubsub.pid"
}

pubsub_await() {
    local pid
    [ -n "${PUBSUB_SPAWNED:-}" ] || {
        touch "$PUBSUB_DIR/enabled"
        return 0
    }
    if ! netcheck wait-http "http://127.0.0.1:$PUBSUB_PORT/" 90 --pid "$PUBSUB_SPAWNED"; then
        log_tail "$PUBSUB_DIR/pubsub.log"
        pubsub_stop quiet
        warn "pubsub: emulator did not answer on 127.0.0.1:$PUBSUB_PORT"
        return 1
    fi
    pid=$(find_pid cloud-pubsub-emulator "--port=$PUBSUB_PORT") && echo "$pid" >"$PUBSUB_DIR/pubsub.pid"
    touch "$PUBSUB_DIR/enabled"
    say "pubsub: ready on 127.0.0.1:$PUBSUB_PORT in $(elapsed "$PUBSUB_T0")"
}

pubsub_stop() {
    local pid
    if pid=$(pubsub_pid) || { [ -n "$PUBSUB_PORT" ] &&
        pid=$(find_pid cloud-pubsub-emulator "--port=$PUBSUB_PORT"); }; then
        [ "${1:-}" = quiet ] || say "pubsub: stopping (pid $pid)"
        term_then_kill 20 "$pid"
    else
        [ "${1:-}" = quiet ] || say "pubsub: not running"
    fi
    rm -f "$PUBSUB_DIR/pubsub.pid"
}

pubsub_kill() {
    local pid
    if pid=$(pubsub_pid); then
        say "pubsub: SIGKILL pid $pid"
        kill -KILL "$pid"
        wait_gone 10 "$pid" || warn "pubsub: pid $pid still alive"
    else
        say "pubsub: not running"
    fi
}

pubsub_status() {
    local pid
    if pid=$(pubsub_pid); then
        printf '%-9s running  pid %-8s 127.0.0.1:%s (in-memory, no persistence)\n' pubsub "$pid" "$PUBSUB_PORT"
    else
        printf '%-9s stopped\n' pubsub
    fi
}
