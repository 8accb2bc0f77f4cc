"""The one settlement policy: how every message the worker sees is settled, and by whom.

* `ack_first`: ack before the actor runs.
* The actor returned: `auto` and `always_ack` ack; `manual` does nothing (the actor settles);
  `manual_explicit` applies the word it returned (anything else: its `on_error`, with
  "no_action" made "reject", so that a bad return value never leaves a message unsettled).
* The actor raised (its own `CancelledError` included): `on_error`, a word or a callable
  (`always_ack` implies "ack").
* The payload did not parse: `on_error`, and a nack carries the error's type and message as
  the dead-letter reason.
* The actor ran out of its `timeout`, or the shutdown cancelled it: reject (back to the queue).
* No actor takes the message: reject; after `POISON_THRESHOLD` sightings, nack ("poison").
* Still unsettled after the pipeline (a settlement that failed, an unexpected error): the runner
  rejects it, except after a "no_action" decision.

"no_action" (the manual modes' default `on_error`) leaves the message to the actor: it stays
unsettled until something settles it, at most for the server's max lease, after which the
server gives it back to its queue and logs it.

Settling never raises: a broker failure is logged and the broker delivers the message again
later (at-least-once).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from repid.connections.abc import ReceivedMessageT
from repid.errors import InvalidConfirmationError
from repid.routing import outcome_literal
from repid.types import ConfirmationModeT, OnErrorT, OutcomeT

__all__ = [
    "ACK",
    "NACK",
    "NO_ACTION",
    "POISON_THRESHOLD",
    "REJECT",
    "Decision",
    "SettlementPolicy",
    "Sightings",
    "describe_error",
    "mark_parse_failure",
    "settle",
    "poison_threshold",
    "unrouted_decision",
]

logger = logging.getLogger("repid.worker")

POISON_THRESHOLD = 10
"""Sightings of one unrouted message after which it is nacked instead of rejected."""

_PARSE_FAILURE = "__repid_parse_failure__"
_MAX_REASON = 1000


class Sightings:
    """How often this worker saw each message (by broker id, else by content), bounded in
    memory (the oldest entries are dropped): unrouted messages, and ones that failed to parse."""

    __slots__ = ("_counts", "_max_entries")

    def __init__(self, max_entries: int = 10_000) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_entries = max_entries

    @staticmethod
    def key(message: ReceivedMessageT) -> str:
        if message.message_id is not None:
            return f"{message.channel}\x00{message.message_id}"
        # No broker id: the same content on the same channel is the same message.
        digest = hashlib.blake2b(message.payload, digest_size=16)
        for name, value in sorted((message.headers or {}).items()):
            digest.update(f"\x00{name}\x00{value}".encode())
        return f"{message.channel}\x00{digest.hexdigest()}"

    def seen(self, message: ReceivedMessageT) -> int:
        """Record one more sighting; return the total."""
        key = self.key(message)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        if len(self._counts) > self._max_entries:
            self._counts.popitem(last=False)
        return count

    def forget(self, message: ReceivedMessageT) -> None:
        self._counts.pop(self.key(message), None)


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome to apply, with the reason a nack stores with the dead letter."""

    outcome: OutcomeT
    reason: str | None = None


ACK = Decision("ack")
NACK = Decision("nack")
REJECT = Decision("reject")
NO_ACTION = Decision("no_action")
_BY_WORD = {"ack": ACK, "nack": NACK, "reject": REJECT, "no_action": NO_ACTION}


def describe_error(exc: BaseException) -> str:
    """`"ValueError: boom"` on one line (multi-line messages joined), at most 1000 characters."""
    text = " ".join(str(exc).split())
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described if len(described) <= _MAX_REASON else described[: _MAX_REASON - 3] + "..."


def mark_parse_failure(exc: BaseException) -> None:
    """Remember that `exc` came from parsing the payload (not from the actor body)."""
    with contextlib.suppress(AttributeError, TypeError):  # a type without attributes
        setattr(exc, _PARSE_FAILURE, True)


def is_parse_failure(exc: BaseException) -> bool:
    return getattr(exc, _PARSE_FAILURE, False) is True


class SettlementPolicy:
    """One actor's settlement rules, decided once when the actor is compiled."""

    __slots__ = ("acks_first", "actor", "manual", "mode", "on_error", "return_decision")

    def __init__(self, actor: str, mode: ConfirmationModeT, on_error: OnErrorT) -> None:
        self.actor = actor
        self.mode = mode
        self.on_error = on_error
        # Read for every message: plain attributes, worked out once.
        self.acks_first: bool = mode == "ack_first"
        """The message is acked before the actor runs ("ack_first")."""
        self.manual: bool = mode in ("manual", "manual_explicit")
        """The actor settles its messages itself ("manual", "manual_explicit")."""
        self.return_decision: Decision | None = (
            None if mode == "manual_explicit" else NO_ACTION if mode == "manual" else ACK
        )
        """What a return means when it does not depend on the value (all modes but
        "manual_explicit"): `after_return` without the call."""

    def after_return(self, result: Any) -> Decision:
        """The actor returned `result`. Raises `InvalidConfirmationError` for a
        `manual_explicit` actor that returned something other than an outcome word."""
        mode = self.mode
        if mode == "manual":
            return NO_ACTION
        if mode != "manual_explicit":
            return ACK  # auto, always_ack (and ack_first, already acked)
        outcome = outcome_literal(result)
        if outcome is None:
            raise InvalidConfirmationError(
                f"actor {self.actor!r} uses confirmation_mode='manual_explicit' and must "
                f'return "ack", "nack", "reject" or "no_action", but returned {result!r}'
            )
        return _BY_WORD[outcome]

    def after_invalid_return(self, error: InvalidConfirmationError) -> Decision:
        """A `manual_explicit` actor returned no outcome word: never leave it unsettled."""
        decision = self.after_error(error)
        return REJECT if decision is NO_ACTION else decision

    def after_error(self, exc: BaseException) -> Decision:
        """The actor (or a middleware around it) raised `exc`."""
        on_error = self.on_error
        if not callable(on_error):
            return _BY_WORD[on_error]
        try:
            decided = on_error(exc)  # type: ignore[arg-type]
        except Exception:
            logger.exception(
                "actor.on_error.failed: the on_error callable of actor %r raised; "
                "rejecting the message",
                self.actor,
                extra={"actor": self.actor},
            )
            return REJECT
        outcome = outcome_literal(decided)
        if outcome is None:
            logger.error(
                "actor.on_error.invalid_return: on_error of actor %r returned %r; "
                "rejecting the message",
                self.actor,
                decided,
                extra={"actor": self.actor},
            )
            return REJECT
        return _BY_WORD[outcome]

    def after_parse_failure(self, exc: BaseException) -> Decision:
        """The payload did not fit the actor's parameters: `on_error`, with the reason."""
        decision = self.after_error(exc)
        if decision.outcome != "nack":
            return decision
        return Decision("nack", describe_error(exc))

    def after_timeout(self) -> Decision:
        return REJECT

    def leftover(self, applied: Decision | None) -> Decision | None:
        """What the runner does with a message still unsettled after the actor pipeline:
        reject it, unless the decision was to leave it alone ("no_action")."""
        if applied is NO_ACTION or (applied is None and self.manual):
            return None
        return REJECT


def poison_threshold(broker_limit: int | None) -> int:
    """The sighting at which a message no actor takes is given up: `POISON_THRESHOLD`, or the
    broker's own delivery limit when it dead-letters earlier."""
    return POISON_THRESHOLD if broker_limit is None else min(POISON_THRESHOLD, broker_limit)


def unrouted_decision(sightings: int, threshold: int = POISON_THRESHOLD) -> Decision:
    """No actor takes a message seen `sightings` times: reject it, or nack it as poison at the
    `threshold`th sighting (see `poison_threshold`)."""
    if sightings >= threshold:
        return Decision("nack", f"poison: no actor takes the message after {sightings} deliveries")
    return REJECT


async def settle(message: ReceivedMessageT, decision: Decision, actor: str | None = None) -> None:
    """Apply `decision` to `message` unless it is already settled; never raises."""
    outcome = decision.outcome
    if outcome == "no_action" or message.is_acted_on:
        return
    try:
        if outcome == "ack":
            await message.ack()
        elif outcome == "reject":
            await message.reject()
        elif decision.reason is not None:
            await message.nack(reason=decision.reason)
        else:
            await message.nack()
    except Exception:
        logger.exception(
            "actor.confirmation.failed: could not %s a message of actor %r on channel %r; the "
            "broker will deliver it again",
            outcome,
            actor,
            message.channel,
            extra={"actor": actor, "channel": message.channel, "outcome": outcome},
        )
