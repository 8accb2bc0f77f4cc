"""One actor, compiled for the hot path: parse, resolve dependencies, run, settle.

Everything that can be decided once (converter, call plan, middleware chain, settlement
policy, routing strategy) is decided in `CompiledActor.__init__`; `process` only does the work
that depends on the message. How messages are settled is `repid.worker.settlement`'s business.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from repid.connections.abc import ReceivedMessageT
from repid.connections.timeouts import timeout
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
from repid.message import AppT, Message
from repid.middlewares import ActorMiddlewareT, compose_actor_middlewares
from repid.observers import OUTCOME_NAMES
from repid.worker.settlement import (
    ACK,
    REJECT,
    Decision,
    SettlementPolicy,
    Sightings,
    describe_error,
    is_parse_failure,
    mark_parse_failure,
    settle,
)

if TYPE_CHECKING:
    from repid.converters.abc import ConverterT
    from repid.observers import MessageObserverT

__all__ = ["ActorTimeoutError", "CompiledActor", "ExecutionResult"]

logger = logging.getLogger("repid.worker")


class ActorTimeoutError(RepidError, TimeoutError):
    """An actor ran longer than its `timeout`; it was cancelled and its message rejected."""


class ExecutionResult:
    """What happened to one message: the actor's return value or exception, and the
    settlement decision applied (None when nothing was decided, e.g. an unrouted message)."""

    __slots__ = ("actor", "decision", "exception", "result")

    def __init__(
        self,
        actor: ActorData | None,
        result: Any,
        exception: BaseException | None,
        decision: Decision | None = None,
    ) -> None:
        self.actor = actor
        self.result = result
        self.exception = exception
        self.decision = decision

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
        "_invalid",
        "_observers",
        "_plan",
        "_pools",
        "_server_name",
        "_timeout",
        "data",
        "matches",
        "policy",
    )

    def __init__(
        self,
        data: ActorData,
        *,
        app: AppT,
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
        self.policy = SettlementPolicy(data.name, data.confirmation_mode, data.on_error)
        self._timeout = data.timeout
        # Messages that failed to parse: a broker without a dead-letter step of its own
        # (Pub/Sub, until the subscription's policy moves it) brings one back again and again.
        self._invalid = Sightings(1_000)
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
        try:
            payload, headers = self._converter.convert_inputs(received)
        except Exception as exc:
            mark_parse_failure(exc)  # the policy settles it with the reason (see `process`)
            raise
        fast_fn = self._fast_fn
        if fast_fn is not None:
            return await fast_fn(**payload)
        ctx = ResolveContext(payload, headers, lambda: self._make_message(received), self._pools)
        plan = self._plan
        return await plan.invoke(await plan.build_kwargs(ctx), self._pools)

    async def _run_with_timeout(self, received: ReceivedMessageT, actor: ActorData) -> Any:
        # Runs in this task (no extra task per message) and tells its own deadline from a
        # TimeoutError raised by the actor itself.
        cm = timeout(self._timeout)
        try:
            async with cm:
                return await self._run(received, actor)
        except TimeoutError:
            if cm.expired():
                raise self._timeout_error() from None
            raise

    def _timeout_error(self) -> ActorTimeoutError:
        return ActorTimeoutError(
            f"actor {self.data.name!r} exceeded its timeout of {self._timeout} s"
        )

    def _make_message(self, received: ReceivedMessageT) -> Message:
        return Message(received, self._app, self._server_name)

    async def process(self, received: ReceivedMessageT) -> ExecutionResult:
        """Run the actor on `received` and settle the message by the actor's policy."""
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
        policy = self.policy
        name = self.data.name
        if policy.acks_first:
            await settle(received, ACK, name)
        try:
            if self._call is not None:
                result = await self._call(received, self.data)
            else:
                result = await self._endpoint(received, self.data)
        except ActorTimeoutError as exc:
            logger.error(
                "actor.timeout: %s",
                exc,
                extra={"actor": name, "channel": received.channel, "outcome": "reject"},
            )
            return await self._settled(received, None, exc, policy.after_timeout())
        except Exception as exc:
            if is_parse_failure(exc):
                decision = policy.after_parse_failure(exc)
                # One line: the reason says what failed; a traceback would only show the parser.
                # At ERROR the first time this worker sees the message, its redeliveries at DEBUG.
                sightings = self._invalid.seen(received)
                logger.log(
                    logging.ERROR if sightings == 1 else logging.DEBUG,
                    "actor.payload_invalid: actor %r could not parse a message from channel %r: "
                    "%s (%s%s)",
                    name,
                    received.channel,
                    decision.reason or describe_error(exc),
                    decision.outcome,
                    "" if sightings == 1 else f"; seen {sightings} times",
                    extra={"actor": name, "channel": received.channel, "outcome": decision.outcome},
                )
                return await self._settled(received, None, exc, decision)
            logger.error(
                "actor.error: actor %r failed on a message from channel %r",
                name,
                received.channel,
                exc_info=exc,
                extra={"actor": name, "channel": received.channel},
            )
            return await self._settled(received, None, exc, policy.after_error(exc))
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)
            if cancelling is None or cancelling() > 0:
                # A real cancellation (shutdown) - or, on Python 3.10, not knowable here: the
                # runner, which knows whom it cancelled, settles the message.
                raise
            logger.error(
                "actor.error: actor %r raised CancelledError on a message from channel %r",
                name,
                received.channel,
                extra={"actor": name, "channel": received.channel},
            )
            return await self._settled(received, None, exc, policy.after_error(exc))
        except (KeyboardInterrupt, SystemExit):
            # Give the message back before the process goes down.
            await settle(received, REJECT, name)
            raise
        fixed = policy.return_decision
        try:
            decision = fixed if fixed is not None else policy.after_return(result)
        except InvalidConfirmationError as invalid:
            logger.error(
                "actor.confirmation.invalid_return: %s",
                invalid,
                extra={"actor": name, "channel": received.channel},
            )
            return await self._settled(
                received, result, invalid, policy.after_invalid_return(invalid)
            )
        await settle(received, decision, name)  # a no-op if the actor settled it already
        return ExecutionResult(self.data, result, None, decision)

    async def _settled(
        self,
        received: ReceivedMessageT,
        result: Any,
        exc: BaseException,
        decision: Decision,
    ) -> ExecutionResult:
        await settle(received, decision, self.data.name)
        return ExecutionResult(self.data, result, exc, decision)


def _fields(actor: ActorData) -> dict[str, Any]:
    return {"actor": actor.name, "channel": actor.channel}


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
