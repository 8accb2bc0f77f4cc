"""One actor, compiled for the hot path: parse, resolve dependencies, run, settle.

Everything that can be decided once (converter, call plan, middleware chain, confirmation
policy, routing strategy) is decided in `CompiledActor.__init__`; `process` only does the work
that depends on the message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from repid.connections.abc import ReceivedMessageT
from repid.converters.basic import BasicConverter
from repid.converters.pydantic import PydanticConverter
from repid.data import ActorData
from repid.dependencies.resolver import (
    CallPlan,
    ExecutorPools,
    InputSpec,
    ResolveContext,
    compile_call_plan,
    finalize_simple,
)
from repid.errors import InvalidConfirmationError, RepidError
from repid.message import Message
from repid.middlewares import ActorMiddlewareT, compose_actor_middlewares
from repid.observers import OUTCOME_NAMES
from repid.routing import outcome_literal

if TYPE_CHECKING:
    from repid.app import Repid
    from repid.converters.abc import ConverterT
    from repid.observers import MessageObserverT

__all__ = ["ActorTimeoutError", "CompiledActor", "ExecutionResult"]

logger = logging.getLogger("repid.worker")

_HAS_TIMEOUT_CM = sys.version_info >= (3, 11)


class ActorTimeoutError(RepidError, TimeoutError):
    """An actor ran longer than its `timeout`; it was cancelled and its message rejected."""


class ExecutionResult:
    """What happened to one message: the actor's return value or exception."""

    __slots__ = ("actor", "exception", "result")

    def __init__(self, actor: ActorData | None, result: Any, exception: BaseException | None):
        self.actor = actor
        self.result = result
        self.exception = exception

    @property
    def success(self) -> bool:
        return self.actor is not None and self.exception is None


class CompiledActor:
    """An `ActorData` turned into a callable pipeline for one worker."""

    __slots__ = (
        "_app",
        "_call",
        "_converter",
        "_endpoint",
        "_fast_fn",
        "_mode",
        "_observers",
        "_on_error",
        "_plan",
        "_pools",
        "_server_name",
        "_timeout",
        "data",
        "matches",
    )

    def __init__(
        self,
        data: ActorData,
        *,
        app: Repid,
        server_name: str | None,
        app_middlewares: Sequence[ActorMiddlewareT],
        pools: ExecutorPools,
        observers: Sequence[MessageObserverT] = (),
    ) -> None:
        self.data = data
        self._app = app
        self._server_name = server_name
        self._pools = pools
        spec = InputSpec(owner=data.name)
        self._plan: CallPlan = compile_call_plan(
            data.fn, spec, run_in_process=data.run_in_process, executor=data.pool_executor
        )
        self._converter: ConverterT = data.converter(spec)
        self.matches: Callable[[Any], bool] = _guarded_strategy(data)
        self._mode = data.confirmation_mode
        self._on_error = data.on_error
        self._timeout = data.timeout
        # The common case - an async actor whose arguments are exactly the payload fields -
        # skips the generic resolver entirely.
        # Only the built-in converters are known to return exactly the declared fields.
        if isinstance(self._converter, BasicConverter | PydanticConverter):
            finalize_simple(self._plan, spec)
        self._fast_fn = data.fn if (self._plan.simple and self._plan.is_async) else None
        endpoint = self._run if self._timeout is None else self._run_with_timeout
        middlewares = [*app_middlewares, *data.middlewares]
        self._call = compose_actor_middlewares(middlewares, endpoint) if middlewares else None
        self._endpoint = endpoint
        self._observers: tuple[MessageObserverT, ...] = tuple(observers)

    @property
    def converter(self) -> ConverterT:
        return self._converter

    # The pipeline ------------------------------------------------------------------------

    async def _run(self, received: ReceivedMessageT, actor: ActorData) -> Any:
        payload, headers = self._converter.convert_inputs(received)
        fast_fn = self._fast_fn
        if fast_fn is not None:
            return await fast_fn(**payload)
        ctx = ResolveContext(payload, headers, lambda: self._make_message(received), self._pools)
        plan = self._plan
        return await plan.invoke(await plan.build_kwargs(ctx), self._pools)

    async def _run_with_timeout(self, received: ReceivedMessageT, actor: ActorData) -> Any:
        timeout = self._timeout
        if _HAS_TIMEOUT_CM:
            # `asyncio.timeout` runs in this task (no extra task per message) and can tell its
            # own deadline from a TimeoutError raised by the actor itself.
            cm = asyncio.timeout(timeout)  # type: ignore[attr-defined,unused-ignore]
            try:
                async with cm:
                    return await self._run(received, actor)
            except TimeoutError:
                if cm.expired():
                    raise self._timeout_error() from None
                raise
        # Python 3.10: cancel this task at the deadline and remember that we did, so that a
        # TimeoutError or CancelledError of the actor's own is not mistaken for ours.
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(timeout or 0.0, expire)
        try:
            return await self._run(received, actor)
        except asyncio.CancelledError:
            if fired:
                raise self._timeout_error() from None
            raise
        finally:
            handle.cancel()

    def _timeout_error(self) -> ActorTimeoutError:
        return ActorTimeoutError(
            f"actor {self.data.name!r} exceeded its timeout of {self._timeout} s"
        )

    def _make_message(self, received: ReceivedMessageT) -> Message:
        return Message(received, self._app, self._server_name)

    async def process(self, received: ReceivedMessageT) -> ExecutionResult:
        """Run the actor on `received` and settle the message per the confirmation mode."""
        if self._observers:
            return await self._process_observed(received)
        return await self._process(received)

    async def _process_observed(self, received: ReceivedMessageT) -> ExecutionResult:
        # See repid.observers: started before the middlewares, finished after settlement.
        observers = self._observers
        data = self.data
        states: list[tuple[MessageObserverT, Any]] = []
        for observer in observers:
            try:
                states.append((observer, observer.process_started(received, data)))
            except Exception:
                logger.exception(
                    "observer.failed: %r raised in process_started", observer, extra=_fields(data)
                )
        started = time.perf_counter()
        result: ExecutionResult | None = None
        error: BaseException | None = None
        try:
            result = await self._process(received)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            duration = time.perf_counter() - started
            outcome = OUTCOME_NAMES.get(received.action, "no_action")
            exception = result.exception if result is not None else error
            for observer, state in reversed(states):
                try:
                    observer.process_finished(state, received, data, outcome, exception, duration)
                except Exception:
                    logger.exception(
                        "observer.failed: %r raised in process_finished",
                        observer,
                        extra=_fields(data),
                    )

    async def _process(self, received: ReceivedMessageT) -> ExecutionResult:
        mode = self._mode
        if mode == "ack_first":
            await _settle(received, "ack", self.data.name)
        try:
            if self._call is not None:
                result = await self._call(received, self.data)
            else:
                result = await self._endpoint(received, self.data)
        except ActorTimeoutError as exc:
            logger.error(
                "actor.timeout: %s",
                exc,
                extra={"actor": self.data.name, "channel": received.channel},
            )
            if not received.is_acted_on:
                await _settle(received, "reject", self.data.name)
            return ExecutionResult(self.data, None, exc)
        except Exception as exc:
            logger.error(
                "actor.error: actor %r failed on a message from channel %r",
                self.data.name,
                received.channel,
                exc_info=exc,
                extra={"actor": self.data.name, "channel": received.channel},
            )
            if not received.is_acted_on:
                await _settle(received, self._outcome_for(exc), self.data.name)
            return ExecutionResult(self.data, None, exc)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)
            if cancelling is None or cancelling() > 0:
                raise  # a real cancellation (shutdown): the runner rejects the message
            # The actor raised CancelledError itself: an ordinary failure.
            logger.error(
                "actor.error: actor %r raised CancelledError on a message from channel %r",
                self.data.name,
                received.channel,
                extra={
                    "actor": self.data.name,
                    "channel": received.channel,
                    "message_id": received.message_id,
                    "error": "CancelledError",
                },
            )
            if not received.is_acted_on:
                await _settle(received, self._outcome_for(exc), self.data.name)
            return ExecutionResult(self.data, None, exc)
        except (KeyboardInterrupt, SystemExit):
            # Give the message back before the process goes down.
            if not received.is_acted_on:
                await _settle(received, "reject", self.data.name)
            raise

        if mode == "auto" or mode == "always_ack":
            if not received.is_acted_on:
                await _settle(received, "ack", self.data.name)
        elif mode == "manual_explicit":
            outcome = outcome_literal(result)
            if outcome is None:
                invalid = InvalidConfirmationError(
                    f"actor {self.data.name!r} uses confirmation_mode='manual_explicit' and must "
                    f'return "ack", "nack", "reject" or "no_action", but returned {result!r}'
                )
                logger.error(
                    "actor.confirmation.invalid_return: %s",
                    invalid,
                    extra={
                        "actor": self.data.name,
                        "channel": received.channel,
                        "message_id": received.message_id,
                    },
                )
                if not received.is_acted_on:
                    fallback = self._outcome_for(invalid)
                    # Never leave a message silently unsettled because of a bad return value.
                    await _settle(
                        received, "reject" if fallback == "no_action" else fallback, self.data.name
                    )
                return ExecutionResult(self.data, result, invalid)
            if not received.is_acted_on:
                await _settle(received, outcome, self.data.name)
        return ExecutionResult(self.data, result, None)

    def _outcome_for(self, exc: BaseException) -> str:
        on_error = self._on_error
        if callable(on_error):
            try:
                decided = on_error(exc)  # type: ignore[arg-type]
            except Exception:
                logger.exception(
                    "actor.on_error.failed: the on_error callable of actor %r raised; "
                    "rejecting the message",
                    self.data.name,
                    extra={"actor": self.data.name, "channel": self.data.channel},
                )
                return "reject"
            outcome = outcome_literal(decided)
            if outcome is None:
                logger.error(
                    "actor.on_error.invalid_return: on_error of actor %r returned %r; "
                    "rejecting the message",
                    self.data.name,
                    decided,
                    extra={"actor": self.data.name, "channel": self.data.channel},
                )
                return "reject"
            return outcome
        return on_error


def _fields(actor: ActorData) -> dict[str, Any]:
    return {"actor": actor.name, "channel": actor.channel}


async def _settle(received: ReceivedMessageT, outcome: str, actor_name: str) -> None:
    """Apply `outcome`; a broker failure here is logged, and the broker redelivers later."""
    try:
        if outcome == "ack":
            await received.ack()
        elif outcome == "nack":
            await received.nack()
        elif outcome == "reject":
            await received.reject()
    except Exception:
        logger.exception(
            "actor.confirmation.failed: could not %s a message of actor %r on channel %r; the "
            "broker will deliver it again",
            outcome,
            actor_name,
            received.channel,
            extra={
                "actor": actor_name,
                "channel": received.channel,
                "outcome": outcome,
                "message_id": received.message_id,
            },
        )


def _guarded_strategy(data: ActorData) -> Callable[[Any], bool]:
    """Build the actor's routing strategy; a strategy that raises counts as "no match"."""
    factory = data.routing_strategy
    try:
        parameters = inspect.signature(factory).parameters.values()
        takes_channel = any(
            p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "channel" for p in parameters
        )
    except (TypeError, ValueError):
        takes_channel = True
    if takes_channel:
        strategy = factory(actor_name=data.name, channel=data.channel)
    else:
        strategy = factory(actor_name=data.name)
    name = data.name

    def matches(message: Any) -> bool:
        try:
            return strategy(message)
        except Exception:
            logger.exception(
                "actor.route.strategy_failed: the routing strategy of actor %r raised; "
                "treating the message as not matching",
                name,
                extra={"actor": name},
            )
            return False

    return matches
