"""Every event name Repid logs, and what it means: the one table log pipelines can rely on.

Every log record the package emits starts its message with one of these names
(`"worker.started: consuming 'orders' on server 'default'"`; `event_of(record)` reads it back)
and has its structured fields in `extra`, so they are attributes of the `LogRecord` (and keys
of `repid run --log-format json`'s lines). The fields use these keys when they apply:

| field | meaning |
| --- | --- |
| `message_id` | the broker's id of the message |
| `actor` | the actor's name |
| `channel` / `channels` | the channel(s) concerned |
| `outcome` | `ack`, `nack`, `reject`, `reply` or `no_action` |
| `duration_ms` | how long it took, in milliseconds |
| `server` | the registered name (or redacted URL) of the server |
| `error` | the exception's class name |
| `state` | a subscription's state (`active`, `recovering`, `failed`, ...) |
| `worker`, `worker_pid` | a supervised worker's index and process id |

No field ever holds a credential: servers appear by name or redacted URL.

The names are stable: renaming one is a breaking change (see the changelog's policy). The
table is rendered for the docs by `events_markdown()`; `tests/observability/test_events.py`
scans every logging call in `repid/` and fails on a name that is not here or a call without
`extra`.
"""

from __future__ import annotations

import logging
import re

__all__ = ["EVENTS", "event_of", "events_markdown"]

EVENTS: dict[str, str] = {
    # The worker -------------------------------------------------------------------------------
    "worker.starting": "`repid run` is starting a worker: version, server, channels, limits",
    "worker.started": "the worker subscribed and consumes its channels",
    "worker.no_actors": "the worker has no actors; it waits for a stop signal (or returns)",
    "worker.signal": "a stop signal arrived; the graceful shutdown begins",
    "worker.signals_skipped": "not in the main thread: no signal handlers were installed",
    "worker.signal_unsupported": "this platform cannot handle that signal in the event loop",
    "worker.force_stop": "a second SIGINT: running actors are cancelled, messages given back",
    "worker.shutdown": "a step of the graceful shutdown (waiting, cancelling, closing)",
    "worker.stopped": "`repid run`'s worker ended: processed and failed counts, run time",
    "worker.progress": "`repid run`'s periodic progress line (processed, failed, in flight)",
    "worker.task_failed": "unexpected error in the worker's own handling of a message (a bug)",
    "worker.fatal": "an actor raised KeyboardInterrupt or SystemExit; the worker shuts down",
    "worker.cannot_start": "a supervised worker cannot start: the app itself is wrong",
    "worker.failed": "a supervised worker ended with an error",
    "worker.supervisor_gone": "the supervisor of this worker exited; it shuts down gracefully",
    "message.processed": "one message done (DEBUG): message_id, actor, channel, outcome, "
    "duration_ms",
    "message.already_acted_on": "a second ack/nack/reject/reply of a message was ignored",
    "message.lease_expired": "a message held unsettled longer than the server's max_lease went "
    "back to its queue",
    "message.settled_after_lease": "an ack/nack/reject of a message whose lease had expired was "
    "ignored (it was already back in its queue)",
    "message.release_failed": "giving back a message whose lease expired failed; the broker "
    "redelivers it by its own timeout",
    # Subscriptions (every built-in server; see repid.connections.base) -----------------------
    "subscription.recovering": "a subscription lost its connection, stream or link: state "
    "recovering until it consumes again",
    "subscription.recovered": "a subscription consumes again: state active",
    "subscription.failed": "a consumer task of a subscription died of an error: state failed",
    "subscription.stop_failed": "stopping a subscription while disconnecting failed",
    "subscription.listener_failed": "a subscription-state listener (`SubscriptionEventsT`) "
    "raised; it is skipped for that change",
    "subscription.callback_failed": "handing a message to the worker raised; the message goes "
    "back to the broker",
    "subscription.give_back_failed": "giving a message back after a failed hand-over failed; "
    "the broker redelivers it later",
    # Actors -----------------------------------------------------------------------------------
    "actor.error": "an actor raised; its message is settled by its on_error policy",
    "actor.timeout": "an actor ran past its timeout; it was cancelled and its message rejected",
    "actor.payload_invalid": "a message did not fit the actor's parameters; settled by on_error, "
    "the reason (error type and text) stored with a dead letter",
    "actor.confirmation.invalid_return": "a manual_explicit actor returned no outcome word",
    "actor.confirmation.failed": "settling a message failed; the broker will deliver it again",
    "actor.on_error.failed": "an actor's on_error callable raised; the message is rejected",
    "actor.on_error.invalid_return": "an actor's on_error returned no outcome word; rejected",
    "actor.route.not_found": "no actor of the channel takes the message; it is rejected (DEBUG)",
    "actor.route.poison_message": (
        "an unrouted message came back too often (10 deliveries, or the broker's own delivery "
        "limit if lower); it is nacked"
    ),
    "actor.route.strategy_failed": "a routing strategy raised; treated as no match",
    "observer.failed": "a message observer (metrics, tracing) raised; the message is unaffected",
    # Jobs -------------------------------------------------------------------------------------
    "job.failed": "a job's attempt failed and will be retried",
    "job.retry": "a job's retry was scheduled (attempt, delay)",
    "job.retry_failed": "publishing a job's retry failed; the attempt goes back to its queue",
    "job.result_store_failed": "storing a job's result bucket failed",
    "job.cancelled": "a cancelled job was dropped on receipt or stopped while running: acked, "
    "its result bucket says cancelled",
    "job.cancelling": "a running job was marked cancelled; its actor's task is being cancelled",
    "job.cancel_poll_failed": "reading a queue's cancellation marks failed; the last ones stay",
    "job.unmark_failed": "removing a cancellation mark failed (it expires by itself)",
    "job.unique_release_failed": "releasing a unique job's claim failed; the id stays taken",
    "job.delay_chain_failed": "RabbitMQ refused to declare the delay chain (permissions?); "
    "delayed jobs on that queue will fail",
    "job.early": "a job arrived before its due time (a delay longer than the broker holds) and "
    "waits again (DEBUG)",
    # Schedulers -------------------------------------------------------------------------------
    "scheduler.started": "a Scheduler started: its periodic jobs",
    "scheduler.stopped": "a Scheduler stopped",
    "scheduler.error": "enqueueing a periodic job's tick failed (broker or state store); its "
    "tick is given back and the job retried with backoff, the others go on",
    "scheduler.failed": "a scheduler of `repid run --scheduler` ended with an error",
    "scheduler.first_tick": "a periodic job seen for the first time starts with its next tick",
    "scheduler.missed": "a periodic job missed ticks (no scheduler ran); it runs once now",
    "scheduler.skipped": "a unique periodic job's tick was skipped: its previous run is pending",
    "scheduler.enqueued": "a periodic job was enqueued for a tick (DEBUG)",
    # Redis ------------------------------------------------------------------------------------
    "redis.connection_lost": "the Redis connection was lost; retrying with backoff",
    "redis.read_failed": "reading from a stream failed; retrying with backoff",
    "redis.group_missing": "the stream or consumer group vanished (flushed?); recreated",
    "redis.fetch_script_refused": "Redis refused the fetch script; reading without it",
    "redis.malformed_entry": "a stream entry is not a Repid message; dead-lettered or dropped",
    "redis.dead_letter_failed": "moving an entry to the dead-letter stream failed",
    "redis.nack_dropped": "a nacked message was dropped: no dead-letter stream configured",
    "redis.claimed": "idle messages of a dead consumer were taken over",
    "redis.no_xautoclaim": "Redis predates XAUTOCLAIM; claiming with XPENDING and XCLAIM",
    "redis.pruned": "idle consumers with nothing pending were removed from the group",
    "redis.prune_failed": "removing idle consumers failed",
    "redis.released": "undelivered messages were put back on the channel",
    "redis.release_failed": "putting messages back failed; other workers reclaim them later",
    "redis.keepalive_failed": "extending the idle time of in-flight messages failed",
    "redis.reply_skipped": "a reply was not published: its message was no longer pending",
    "redis.delayed_move_failed": "moving due delayed jobs into their stream failed",
    "redis.cluster": "the URL's node belongs to a Redis Cluster: the server uses it as one",
    "redis.cluster_retry": "a Redis Cluster command met a failover; retrying (DEBUG)",
    "redis.fetch_partial": "reading the channels of one slot failed; the others were read (DEBUG)",
    "redis.close_failed": "closing a Redis client failed (DEBUG)",
    # AMQP -------------------------------------------------------------------------------------
    "amqp.connected": "connected to the AMQP broker",
    "amqp.connect_failed": "connecting to the AMQP broker failed; retrying",
    "amqp.connection_lost": "the AMQP connection was lost; reconnecting",
    "amqp.reconnect_failed": "a reconnection attempt failed; retrying",
    "amqp.reconnected": "the AMQP connection is back",
    "amqp.node_unavailable": "a node of the URL list did not answer; trying the next one",
    "amqp.socket_lost": "the AMQP socket closed (DEBUG)",
    "amqp.idle_timeout": "the broker sent nothing within the idle timeout; the connection "
    "is closed",
    "amqp.reader_crashed": "the AMQP frame reader failed unexpectedly",
    "amqp.attach_failed": "attaching a consumer link failed; retrying with backoff",
    "amqp.attach_timeout": "the broker did not answer an attach; the connection is reopened",
    "amqp.link_detached": "the broker detached a consumer link; re-attaching",
    "amqp.reattach_failed": "re-attaching a consumer link failed",
    "amqp.bad_message": "an undecodable AMQP message was rejected (dead-lettered)",
    "amqp.settle_lost": "a message's link is gone; the broker will deliver it again",
    # Pub/Sub ----------------------------------------------------------------------------------
    "pubsub.connected": "the gRPC channel to Pub/Sub is open",
    "pubsub.disconnected": "the gRPC channel to Pub/Sub is closed",
    "pubsub.stream_lost": "a streaming pull ended; reopening it with backoff",
    "pubsub.subscription_not_found": "the Pub/Sub subscription does not exist",
    "pubsub.policy_unknown": (
        "the subscription's dead-letter policy could not be read (permission "
        "pubsub.subscriptions.get); an unroutable message may be dead-lettered unlogged"
    ),
    "pubsub.lease_extension_failed": "extending ack deadlines failed",
    "pubsub.keep_alive_failed": "the channel keep-alive failed",
    "pubsub.return_failed": "giving messages back (ack deadline 0) failed",
    "pubsub.connection_silent": "no answer on a connected channel for too long; reconnecting",
    "pubsub.channel_check_failed": "probing the gRPC channel's health failed",
    # Side servers and the command line --------------------------------------------------------
    "http.listening": "an HTTP side server (health, docs, metrics) listens: server, url",
    "http.bad_request": "a malformed or over-limit request was answered 4xx",
    "http.connection_failed": "an HTTP connection failed unexpectedly",
    "http.handler_failed": "an HTTP handler raised; answered 500",
    "http.write_timeout": "a client did not read its response in time",
    "http.close_timeout": "a listener did not report closed in time",
    "asyncapi_server.assets_missing": "the AsyncAPI React bundle is missing; the page loads it "
    "from a CDN",
    "docs.serving": "`repid docs serve` serves the AsyncAPI page",
    "cli.disconnect_failed": "disconnecting a server at the end of a command failed",
    "supervisor.started": "the `--workers N` supervisor started",
    "supervisor.worker_started": "the supervisor started a worker process",
    "supervisor.worker_exited": "a worker process exited (and is restarted after a backoff)",
    "supervisor.worker_finished": "a worker process processed its messages limit",
    "supervisor.worker_recycled": "a worker was replaced after --max-messages-per-worker",
    "supervisor.worker_cannot_start": "a worker cannot start because of the app; stopping",
    "supervisor.spawn_failed": "starting a worker process failed",
    "supervisor.report_failed": "handling a worker's status report failed",
    "supervisor.exit_callback_failed": "a worker-exit callback (metrics clean-up) failed",
    "supervisor.watching": "--reload watches the project's Python files",
    "supervisor.reloading": "files changed; the workers restart",
    "supervisor.stopping": "a stop signal: the workers drain gracefully",
    "supervisor.force_stop": "a second SIGINT: the workers stop at once",
    "supervisor.killing": "a worker did not stop in time and is killed",
    "supervisor.stopped": "every worker exited; the supervisor ends",
    "sync_producer.forked": "SyncProducer used after fork: a fresh loop thread (DEBUG)",
    "sync_producer.close_failed": "closing SyncProducer's loop failed",
    "sync_producer.disconnect_failed": "SyncProducer could not disconnect a server",
    "testing.auto_process_limit": "TestClient stopped auto-processing after too many messages",
    "testing.operation_not_found": "TestClient got an operation id the app does not define",
    # Observability ----------------------------------------------------------------------------
    "opentelemetry.instrumented": "OpenTelemetry instrumentation added (tracing, metrics on/off)",
    "opentelemetry.disabled": "no recording OpenTelemetry provider: nothing was instrumented",
    "prometheus.instrumented": "Prometheus instrumentation added",
    "prometheus.stats_failed": "reading a channel's broker statistics failed (DEBUG)",
}

_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


def event_of(record: logging.LogRecord) -> str | None:
    """The event name of one of Repid's log records (None if it has none)."""
    name = getattr(record, "event", None)
    if isinstance(name, str):
        return name
    found = _NAME.match(str(record.msg))
    return found.group(0) if found and found.group(0) in EVENTS else None


def events_markdown() -> str:
    """The table, as Markdown (for the docs)."""
    rows = ["| event | meaning |", "| --- | --- |"]
    rows += [f"| `{name}` | {meaning} |" for name, meaning in EVENTS.items()]
    return "\n".join(rows) + "\n"
