"""RabbitMQ 4 AMQP address format v2 and the conversion between `MessageData` and AMQP messages."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from repid.connections.amqp.protocol.message import (
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpSequence,
    AmqpValue,
    Message,
)
from repid.connections.amqp.protocol.types import Symbol
from repid.data import MessageData

__all__ = [
    "AddressStrategyT",
    "ExchangeAddressStrategyT",
    "PUBLISH_PARAMETERS",
    "build_message",
    "default_address_strategy",
    "default_exchange_address_strategy",
    "headers_of",
    "payload_of",
]

logger = logging.getLogger("repid.connections.amqp")

AddressStrategyT = Callable[[str], str]
"""channel -> AMQP target address used when publishing to a channel (default: its queue)."""

ExchangeAddressStrategyT = Callable[[str, str], str]
"""(exchange, routing key) -> AMQP target address, used when `routing_key` is given."""

PUBLISH_PARAMETERS = frozenset(
    {
        "header",
        "properties",
        "delivery_annotations",
        "message_annotations",
        "footers",
        "to",
        "routing_key",
    }
)


def _segment(name: str) -> str:
    # Address format v2 percent-encodes everything outside RFC 3986 "unreserved".
    return quote(name, safe="")


def default_address_strategy(channel: str) -> str:
    """`/queues/{channel}`: a channel names a queue."""
    return f"/queues/{_segment(channel)}"


def default_exchange_address_strategy(exchange: str, routing_key: str) -> str:
    """`/exchanges/{exchange}/{routing_key}` (`/exchanges/{exchange}` for an empty key)."""
    if routing_key == "":
        return f"/exchanges/{_segment(exchange)}"
    return f"/exchanges/{_segment(exchange)}/{_segment(routing_key)}"


_DEFAULT_HEADER = AmqpMessageHeader(durable=True)


def _symbol_keys(name: str, value: Any) -> dict[Any, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"server_specific_parameters[{name!r}] must be a dict")
    return {Symbol(k) if type(k) is str else k: v for k, v in value.items()}


def build_message(
    channel: str,
    message: MessageData,
    params: Mapping[str, Any] | None,
    address_strategy: AddressStrategyT,
    exchange_address_strategy: ExchangeAddressStrategyT,
) -> Message:
    """The AMQP message for `publish`: headers become application-properties, the payload one
    data section, content_type properties.content-type, and the target address goes in `to`.
    """
    header = _DEFAULT_HEADER
    properties: AmqpMessageProperties | None = None
    to: str | None = None
    routing_key: str | None = None
    delivery_annotations = message_annotations = footer = None
    if params:
        unknown = set(params) - PUBLISH_PARAMETERS
        if unknown:
            raise TypeError(
                f"unknown AmqpServer server_specific_parameters {sorted(unknown)}; "
                f"supported: {sorted(PUBLISH_PARAMETERS)}"
            )
        header = params.get("header") or _DEFAULT_HEADER
        if not isinstance(header, AmqpMessageHeader):
            raise TypeError("server_specific_parameters['header'] must be an AmqpMessageHeader")
        properties = params.get("properties")
        if properties is not None and not isinstance(properties, AmqpMessageProperties):
            raise TypeError(
                "server_specific_parameters['properties'] must be an AmqpMessageProperties"
            )
        to = params.get("to")
        routing_key = params.get("routing_key")
        delivery_annotations = _symbol_keys(
            "delivery_annotations", params.get("delivery_annotations")
        )
        message_annotations = _symbol_keys("message_annotations", params.get("message_annotations"))
        footer = _symbol_keys("footers", params.get("footers"))
    if to is None:
        if properties is not None and properties.to is not None:
            to = properties.to
        elif routing_key is not None:
            to = exchange_address_strategy(channel, routing_key)
        else:
            to = address_strategy(channel)
    if properties is None:
        properties = AmqpMessageProperties(
            message_id=uuid.uuid4().hex, to=to, content_type=message.content_type
        )
    else:
        properties = dataclasses.replace(
            properties,
            to=to,
            message_id=properties.message_id
            if properties.message_id is not None
            else uuid.uuid4().hex,
            content_type=properties.content_type
            if properties.content_type is not None
            else message.content_type,
        )
    return Message(
        body=[message.payload],
        header=header,
        delivery_annotations=delivery_annotations,
        message_annotations=message_annotations,
        properties=properties,
        application_properties=dict(message.headers) if message.headers else None,
        footer=footer,
    )


def headers_of(message: Message) -> dict[str, str] | None:
    """application-properties as string headers (other clients may send non-string values)."""
    props = message.application_properties
    if not props:
        return None
    headers: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, str):
            headers[key] = value
        elif isinstance(value, bytes):
            headers[key] = value.decode("utf-8", "replace")
        elif isinstance(value, bool):
            headers[key] = "true" if value else "false"
        else:
            headers[key] = str(value)
    return headers


def payload_of(message: Message) -> bytes | None:
    """The payload bytes: data sections joined; a str/bytes amqp-value; None if unusable."""
    body = message.body
    if isinstance(body, AmqpValue):
        value = body.value
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if value is None:
            return b""
        return None
    if body and isinstance(body[0], AmqpSequence):
        return None
    return b"".join(part for part in body if isinstance(part, bytes))
