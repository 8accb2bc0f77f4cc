"""Compile a function's signature once into a plan for filling its arguments per message.

At registration time (worker start) every actor and all of its dependencies are inspected once:
each parameter becomes a payload field, a header, the `Message`, the full payload or a nested
`Depends`. All payload fields of the actor and its whole dependency tree are merged into one
`InputSpec`, which the converter turns into a single parser, so each message is decoded and
validated once. Per message the worker only runs `CallPlan.call`, which does dictionary lookups
and calls; no `inspect`, no model building.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import typing
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Annotated, Any

from repid.dependencies.depends import Depends
from repid.dependencies.header import Header
from repid.dependencies.payload import FullPayload
from repid.errors import ActorDeclarationError
from repid.message import Message, MessageDependency

__all__ = [
    "REQUIRED",
    "CallPlan",
    "ExecutorPools",
    "HeaderField",
    "InputSpec",
    "PayloadField",
    "ResolveContext",
    "SignatureError",
    "compile_call_plan",
]


class _Required:
    __slots__ = ()

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a field that has no default."""


class SignatureError(ActorDeclarationError, TypeError):
    """An actor or dependency signature that Repid cannot fill (raised when a worker starts)."""


@dataclass(frozen=True, slots=True)
class PayloadField:
    """One field of the JSON payload object, requested by the actor or a dependency."""

    name: str
    annotation: Any
    default: Any = REQUIRED


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One message header, by its header name."""

    key: str
    annotation: Any
    default: Any = REQUIRED


@dataclass(slots=True)
class InputSpec:
    """Everything an actor (with its dependencies) reads from a message; given to converters."""

    owner: str
    payload_fields: dict[str, PayloadField] = field(default_factory=dict)
    header_fields: dict[str, HeaderField] = field(default_factory=dict)
    full_payload: Any = None
    wants_full_payload: bool = False

    def add_payload_field(self, f: PayloadField) -> None:
        # The same name requested twice (actor and dependency) is one field: the first
        # declaration (the actor's, since it is compiled first) decides its type; a default
        # from any declaration keeps it optional.
        existing = self.payload_fields.get(f.name)
        if existing is None or (existing.default is REQUIRED and f.default is not REQUIRED):
            if existing is not None:
                f = PayloadField(existing.name, existing.annotation, f.default)
            self.payload_fields[f.name] = f

    def add_header_field(self, f: HeaderField) -> None:
        existing = self.header_fields.get(f.key)
        if existing is None or (existing.default is REQUIRED and f.default is not REQUIRED):
            if existing is not None:
                f = HeaderField(existing.key, existing.annotation, f.default)
            self.header_fields[f.key] = f


class ExecutorPools:
    """The thread and process pools that run sync actors and dependencies, made on first use."""

    __slots__ = ("_process", "_thread")

    def __init__(self) -> None:
        self._thread: Executor | None = None
        self._process: Executor | None = None

    def thread_pool(self) -> Executor:
        if self._thread is None:
            from concurrent.futures import ThreadPoolExecutor

            self._thread = ThreadPoolExecutor(thread_name_prefix="repid")
        return self._thread

    def process_pool(self) -> Executor:
        if self._process is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # "spawn": forking a process that runs an event loop and a thread pool can
            # deadlock the child.
            self._process = ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn"))
        return self._process

    def discard_broken_process_pool(self) -> None:
        """Forget a process pool whose child died; the next call makes a fresh one."""
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None

    def shutdown(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None


class ResolveContext:
    """Per-message state while a call plan runs: parsed values and the dependency cache."""

    __slots__ = ("cache", "headers", "make_message", "message", "payload", "pools")

    def __init__(
        self,
        payload: dict[str, Any],
        headers: dict[str, Any],
        make_message: Callable[[], Message],
        pools: ExecutorPools,
    ) -> None:
        self.payload = payload
        self.headers = headers
        self.make_message = make_message
        self.message: Message | None = None
        self.cache: dict[int, Any] = {}
        self.pools = pools

    def get_message(self) -> Message:
        if self.message is None:
            self.message = self.make_message()
        return self.message


_ASYNC, _THREAD, _PROCESS = 0, 1, 2


class CallPlan:
    """How to call one function with values from a message. Built by `compile_call_plan`."""

    __slots__ = (
        "dependencies",
        "executor",
        "fn",
        "full_payload_params",
        "header_params",
        "message_params",
        "mode",
        "payload_params",
        "simple",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        mode: int,
        executor: Executor | None,
    ) -> None:
        self.fn = fn
        self.mode = mode
        self.executor = executor
        self.payload_params: tuple[str, ...] = ()
        self.header_params: tuple[tuple[str, str], ...] = ()
        self.message_params: tuple[str, ...] = ()
        self.full_payload_params: tuple[str, ...] = ()
        self.dependencies: tuple[tuple[str, Depends, CallPlan], ...] = ()
        # True when the arguments are exactly the payload fields: the parsed dict is passed on.
        self.simple = False

    @property
    def is_async(self) -> bool:
        return self.mode == _ASYNC

    def _base_kwargs(self, ctx: ResolveContext) -> dict[str, Any]:
        payload = ctx.payload
        if self.simple:
            return payload
        kwargs: dict[str, Any] = {}
        for name in self.payload_params:
            if name in payload:
                kwargs[name] = payload[name]
        if self.header_params:
            headers = ctx.headers
            for name, key in self.header_params:
                if key in headers:
                    kwargs[name] = headers[key]
        for name in self.message_params:
            kwargs[name] = ctx.get_message()
        for name in self.full_payload_params:
            kwargs[name] = payload[_FULL_PAYLOAD_KEY]
        return kwargs

    async def build_kwargs(self, ctx: ResolveContext) -> dict[str, Any]:
        kwargs = self._base_kwargs(ctx)
        if self.dependencies:
            if kwargs is ctx.payload:
                kwargs = dict(kwargs)
            for name, depends, plan in self.dependencies:
                fn = depends.fn
                if fn is not plan.fn:
                    # Overridden after the worker compiled its actors (a test fixture order).
                    plan = _plan_for_override(depends, fn)
                # One call per function and message, however many times it is requested.
                key = id(fn)
                if key in ctx.cache:
                    kwargs[name] = ctx.cache[key]
                else:
                    value = await plan.call(ctx)
                    ctx.cache[key] = value
                    kwargs[name] = value
        return kwargs

    async def call(self, ctx: ResolveContext) -> Any:
        kwargs = await self.build_kwargs(ctx)
        return await self.invoke(kwargs, ctx.pools)

    async def invoke(self, kwargs: dict[str, Any], pools: ExecutorPools) -> Any:
        if self.mode == _ASYNC:
            return await self.fn(**kwargs)
        loop = asyncio.get_running_loop()
        if self.mode == _THREAD:
            executor = self.executor or pools.thread_pool()
            # Copy the context so contextvars set by middlewares are visible in the thread.
            ctx_run = contextvars.copy_context().run
            return await loop.run_in_executor(
                executor, functools.partial(ctx_run, self.fn, **kwargs)
            )
        executor = self.executor or pools.process_pool()
        try:
            return await loop.run_in_executor(executor, functools.partial(self.fn, **kwargs))
        except BrokenProcessPool:
            # A child died (killed, crashed): this call fails, later ones get a new pool.
            if self.executor is None:
                pools.discard_broken_process_pool()
            raise


_FULL_PAYLOAD_KEY = "\x00repid:full-payload"
FULL_PAYLOAD_KEY = _FULL_PAYLOAD_KEY
_MARKERS = (Depends, Header, FullPayload, MessageDependency)


def _split_annotated(annotation: Any) -> tuple[Any, Any]:
    """Return (annotation without Repid's marker, the marker or None)."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        markers = [m for m in metadata if isinstance(m, _MARKERS)]
        if markers:
            rest = [m for m in metadata if not isinstance(m, _MARKERS)]
            if len(markers) > 1:
                raise SignatureError(f"more than one of Depends/Header/FullPayload in {annotation}")
            if rest:
                params = (base, *rest)
                return Annotated[params], markers[0]  # type: ignore[valid-type,unused-ignore]
            return base, markers[0]
    return annotation, None


def _is_message_annotation(annotation: Any) -> bool:
    return annotation is Message or (
        isinstance(annotation, type) and issubclass(annotation, Message)
    )


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError, AttributeError):
        pass
    # Evaluate parameter by parameter, to name the one that fails.
    signature = inspect.signature(fn)
    unwrapped = inspect.unwrap(fn)
    namespace = dict(getattr(unwrapped, "__globals__", {}))
    owner = getattr(fn, "__qualname__", repr(fn))
    params = []
    for param in signature.parameters.values():
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                # The annotation text comes from the function definition itself.
                annotation = eval(annotation, namespace)
            except Exception as exc:
                raise SignatureError(
                    f"{owner}: cannot evaluate the annotation {param.annotation!r} of parameter "
                    f"{param.name!r} ({exc}). With `from __future__ import annotations`, names "
                    "used in annotations must be importable from the function's module (not "
                    "local to another function)."
                ) from exc
        params.append(param.replace(annotation=annotation))
    return signature.replace(parameters=params)


def _mode_for(fn: Callable[..., Any], run_in_process: bool) -> int:
    target = fn
    # `functools.partial` and callables with an async __call__ count as async.
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004
    ):
        if run_in_process:
            raise SignatureError(f"run_in_process=True needs a sync function, {fn!r} is async")
        return _ASYNC
    return _PROCESS if run_in_process else _THREAD


def compile_call_plan(
    fn: Callable[..., Any],
    spec: InputSpec,
    *,
    run_in_process: bool = False,
    executor: Executor | None = None,
    _stack: tuple[Callable[..., Any], ...] = (),
) -> CallPlan:
    """Inspect `fn` once; record its inputs in `spec`; return how to call it per message."""
    if fn in _stack:
        raise SignatureError(f"dependency cycle through {getattr(fn, '__qualname__', fn)!r}")
    plan = CallPlan(fn, _mode_for(fn, run_in_process), executor)
    payload_params: list[str] = []
    header_params: list[tuple[str, str]] = []
    message_params: list[str] = []
    full_payload_params: list[str] = []
    dependencies: list[tuple[str, Depends, CallPlan]] = []
    owner = getattr(fn, "__qualname__", repr(fn))

    for name, param in _signature(fn).parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise SignatureError(
                f"{owner}: positional-only parameter {name!r} cannot be filled from a message"
            )
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = REQUIRED if param.default is inspect.Parameter.empty else param.default
        annotation, marker = _split_annotated(annotation)

        if isinstance(marker, Depends):
            target = inspect.unwrap(marker.fn)
            if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
                raise SignatureError(
                    f"{owner}: dependency {getattr(target, '__qualname__', target)!r} of "
                    f"parameter {name!r} is a generator; yield-style dependencies are not "
                    "supported - return the value (and clean up in a middleware)"
                )
            sub = compile_call_plan(
                marker.fn,
                spec,
                run_in_process=marker.run_in_process,
                _stack=(*_stack, fn),
            )
            dependencies.append((name, marker, sub))
        elif isinstance(marker, Header):
            key = marker.alias or name
            header_params.append((name, key))
            spec.add_header_field(HeaderField(key, annotation, default))
        elif isinstance(marker, FullPayload):
            full_payload_params.append(name)
            if spec.wants_full_payload and spec.full_payload != annotation:
                raise SignatureError(f"{owner}: FullPayload requested with two different types")
            spec.wants_full_payload = True
            spec.full_payload = annotation
        elif isinstance(marker, MessageDependency) or _is_message_annotation(annotation):
            message_params.append(name)
        else:
            payload_params.append(name)
            spec.add_payload_field(PayloadField(name, annotation, default))

    plan.payload_params = tuple(payload_params)
    plan.header_params = tuple(header_params)
    plan.message_params = tuple(message_params)
    plan.full_payload_params = tuple(full_payload_params)
    plan.dependencies = tuple(dependencies)
    return plan


_override_plans: dict[tuple[int, int], CallPlan] = {}


def _plan_for_override(depends: Depends, fn: Callable[..., Any]) -> CallPlan:
    key = (id(depends), id(fn))
    plan = _override_plans.get(key)
    if plan is None or plan.fn is not fn:
        # Payload fields the override asks for that the actor never declared are not parsed;
        # overrides are meant to be simple stand-ins.
        plan = compile_call_plan(
            fn, InputSpec(owner="override"), run_in_process=depends.run_in_process
        )
        _override_plans[key] = plan
    return plan


def finalize_simple(plan: CallPlan, spec: InputSpec) -> None:
    """Let `plan` pass the parsed payload dict straight through when that is exactly right.

    Only for converters known to return exactly the declared fields (the built-in ones).
    """
    plan.simple = (
        not plan.dependencies
        and not plan.header_params
        and not plan.message_params
        and not plan.full_payload_params
        and not spec.wants_full_payload
        and tuple(spec.payload_fields) == plan.payload_params
    )
