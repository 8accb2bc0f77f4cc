"""Seed 002, Cookbook "RabbitMQ Retries with Exponential Backoff": the decorator, verbatim.

(The `# (n)!` markers are the seed's annotation anchors; the notes they point to are in the
seed. `test_seed002_cookbook.py` runs it on the in-memory broker.)
"""
# ruff: noqa: UP035, RET505

import inspect
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from repid import Message, Router  # noqa: F401  (Router: used by the seed's next snippet)

P = ParamSpec("P")
R = TypeVar("R")


def with_rabbitmq_retries(
    max_retries: int = 5,
    backoff_delays: list[int] | None = None,
    retry_exchange: str = "retry_exchange",
    retry_exceptions: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[Concatenate[Message, P], Awaitable[R]]]:
    """
    Wraps a Repid actor with RabbitMQ exponential backoff logic.
    Assumes the actor uses the default `confirmation_mode="auto"`.
    """
    if backoff_delays is None:
        # Default delays: 10s, 1m, 5m, 10m, 30m
        backoff_delays = [10_000, 60_000, 300_000, 600_000, 1_800_000]

    def decorator(
        func: Callable[P, Awaitable[R]],
    ) -> Callable[Concatenate[Message, P], Awaitable[R]]:
        sig = inspect.signature(func)  # (1)!
        if "message" not in sig.parameters:
            new_params = [
                *list(sig.parameters.values()),
                inspect.Parameter("message", inspect.Parameter.KEYWORD_ONLY, annotation=Message),
            ]
            new_sig = sig.replace(parameters=new_params)
        else:
            new_sig = sig

        @wraps(func)
        async def wrapper(message: Message, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                if "message" in sig.parameters:
                    kw = cast(dict[str, Any], kwargs)
                    kw["message"] = message
                    return await func(*args, **kw)  # (2)!
                else:
                    return await func(*args, **kwargs)
            except retry_exceptions as e:  # (3)!
                headers = message.headers or {}
                retry_count = int(headers.get("x-retry-count", 0))

                if retry_count >= max_retries:
                    print(f"Max retries ({max_retries}) reached for message {message.message_id}")
                    raise  # (4)!

                delay_index = min(retry_count, len(backoff_delays) - 1)
                delay_ms = backoff_delays[delay_index]

                print(f"Task failed: {e}. Retrying in {delay_ms}ms (Attempt {retry_count + 1})")

                new_headers = headers.copy()
                new_headers["x-retry-count"] = str(retry_count + 1)

                amqp_to_address = (
                    f"/exchanges/{retry_exchange}/delay.{delay_ms}.{message.channel}"  # (5)!
                )

                await message.send_message(
                    channel=message.channel,
                    payload=message.payload,
                    content_type=message.content_type,
                    headers=new_headers,
                    server_specific_parameters={"to": amqp_to_address},
                )

                return None  # (6)!

        wrapper.__signature__ = new_sig  # (7)!
        return wrapper

    return decorator
