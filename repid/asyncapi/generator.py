"""Build the AsyncAPI 3.0.0 document of a `Repid` app.

Layout of the document:

* `info` from the app's metadata; `defaultContentType` is `application/json`.
* `servers`: one per registered server, from its AsyncAPI properties. Credentials never appear:
  servers already keep them out of `host`/`pathname`, and this module strips any user-info
  (`user:pass@`) and query string that might still be there.
* `channels`: one per distinct channel address used by an actor or a registered operation; the
  key is the address made safe for the spec's key pattern, `address` is the real name.
* `operations`: `receive` per actor (key: the actor's name) and `send` per registered operation
  (key: its operation id). Keys are made unique and match `^[\\w\\d\\.\\-_]+$`.
* `components.messages`: one message per actor (and per extra message given as metadata), with
  the payload and headers schemas under `components.schemas`. Pydantic `$defs` are hoisted into
  `components.schemas` and their `$ref`s rewritten; identical definitions are shared.

Extra `messages` given to an actor, an operation or a `Channel` may be: an AsyncAPI Message
Object (a dict with `payload`, `headers` or `$ref`), a JSON Schema dict (used as the payload),
or a type (a Pydantic model or any type Pydantic can describe, used as the payload). A send
operation without `messages` lists every message of its channel.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from repid.connections.abc import DescribedServerT, ServerDescription
from repid.routing import topic_routing_strategy

if TYPE_CHECKING:
    from repid.registry.messages import Channel, Operation
    from repid.worker.actor import CompiledActor

__all__ = [
    "ASYNCAPI_VERSION",
    "AsyncAPISourceT",
    "generate_schema",
    "safe_key",
    "to_jsonable",
]


class _ServersT(Protocol):
    def items(self) -> Iterable[tuple[str, Any]]: ...


class AsyncAPISourceT(Protocol):
    """The parts of an app that its AsyncAPI document is made of (`Repid` has them).

    The generator reads the app through this protocol, so it does not depend on the app's
    module: `Repid.generate_asyncapi_schema()` is the one seam between them.
    """

    title: str
    version: str
    description: str | None
    terms_of_service: str | None
    contact: Any
    license: Any
    tags: list[Any] | None
    external_docs: Any

    @property
    def servers(self) -> _ServersT: ...

    @property
    def messages(self) -> Iterable[Operation]: ...

    def compile_actors(self, server_name: str | None) -> list[CompiledActor]: ...


ASYNCAPI_VERSION = "3.0.0"
DEFAULT_CONTENT_TYPE = "application/json"

# The spec's component key pattern is `^[\w\d\.\-_]+$` in ECMAScript, where `\w` is ASCII-only.
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
_MESSAGE_OBJECT_KEYS = frozenset({"payload", "headers", "$ref"})


def safe_key(name: str) -> str:
    """`name` with every character the spec forbids in keys replaced by `_`."""
    return _UNSAFE_KEY_CHARS.sub("_", name) or "_"


class _Keys:
    """Allocates unique, spec-safe keys within one namespace (channels, operations...)."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def new(self, name: str) -> str:
        base = safe_key(name)
        key = base
        index = 2
        while key in self._taken:
            key = f"{base}_{index}"
            index += 1
        self._taken.add(key)
        return key


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_jsonable(value: Any) -> Any:
    """`value` as JSON-ready data: dataclasses (`Tag`, `ExternalDocs`...) become dicts with
    camelCase keys and no `None` fields, Pydantic models are dumped, enums give their values.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _camel(f.name): to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_none=True)
    raise TypeError(
        f"cannot put a {type(value).__name__} into an AsyncAPI document; use a dict, a list, "
        "a string or one of repid's AsyncAPI objects (Tag, ExternalDocs, ...)"
    )


def _tags(tags: Iterable[Any] | None) -> list[Any] | None:
    if not tags:
        return None
    result: list[Any] = []
    for tag in tags:
        item = {"name": tag} if isinstance(tag, str) else to_jsonable(tag)
        if item not in result:  # the spec requires unique tags
            result.append(item)
    return result


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `target[key]` to `value` as JSON, unless it is None or empty."""
    if value is None:
        return
    converted = to_jsonable(value)
    if converted == {} or converted == []:
        return
    target[key] = converted


def _describe(target: dict[str, Any], source: Any) -> None:
    """Copy the common descriptive fields of an actor, operation, channel or server."""
    for attr, key in (("title", "title"), ("summary", "summary"), ("description", "description")):
        value = getattr(source, attr, None)
        if value:
            target[key] = str(value)
    tags = _tags(getattr(source, "tags", None))
    if tags:
        target["tags"] = tags
    _put(target, "externalDocs", getattr(source, "external_docs", None))
    _put(target, "bindings", getattr(source, "bindings", None))


# Servers ------------------------------------------------------------------------------------


def _clean_host(host: str) -> str:
    # Servers keep credentials out of `host`; this is a second line of defence.
    host = host.rsplit("@", 1)[-1]
    if "://" in host:
        host = host.split("://", 1)[1]
    return host.split("/", 1)[0].split("?", 1)[0]


def _description_of(server: Any) -> ServerDescription:
    if isinstance(server, DescribedServerT):
        return server.asyncapi_description()
    # A server that does not describe itself: what its type says, nothing it holds.
    return ServerDescription(host="localhost", protocol=type(server).__name__.lower())


def _server_object(server: Any) -> dict[str, Any]:
    described = _description_of(server)
    result: dict[str, Any] = {
        "host": _clean_host(str(described.host)),
        "protocol": str(described.protocol),
    }
    pathname = described.pathname
    if pathname:
        # A pathname is a path; a query string (where some URLs carry secrets) is dropped.
        result["pathname"] = str(pathname).split("?", 1)[0].split("#", 1)[0]
    if described.protocol_version:
        result["protocolVersion"] = str(described.protocol_version)
    _describe(result, described)
    _put(result, "variables", described.variables)
    _put(result, "security", described.security)
    return result


# Schemas ------------------------------------------------------------------------------------


class _Schemas:
    """`components.schemas`, with `$defs` hoisting and sharing of identical definitions."""

    __slots__ = ("_keys", "schemas")

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._keys = _Keys()

    def _ref(self, key: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{quote(key, safe='')}"}

    def add(self, schema: Mapping[str, Any] | bool, name: str) -> dict[str, Any]:
        """Store `schema` (and its local definitions) and return a `$ref` to it."""
        if isinstance(schema, bool):
            schema = {} if schema else {"not": {}}
        body = copy.deepcopy(dict(schema))
        local: dict[str, Any] = {}
        for container in ("$defs", "definitions"):
            defs = body.pop(container, None)
            if isinstance(defs, Mapping):
                for def_name, definition in defs.items():
                    local[f"#/{container}/{def_name}"] = (def_name, definition)
        # Each local definition gets a components key: the existing one if an identical
        # definition (by its would-be content) is already stored, else a fresh unique key.
        renamed = {ref: safe_key(def_name) for ref, (def_name, _) in local.items()}
        reused = {ref for ref in local if renamed[ref] in self.schemas}
        for ref in local:
            if ref not in reused:
                renamed[ref] = self._keys.new(local[ref][0])
        # A reused key is only right if the stored schema equals this definition with this
        # schema's own names; drop reuses until that holds for all (the set only shrinks).
        changed = True
        while changed:
            changed = False
            for ref in [r for r in local if r in reused]:
                if self.schemas[renamed[ref]] != _rewrite_refs(local[ref][1], renamed, self._ref):
                    reused.discard(ref)
                    renamed[ref] = self._keys.new(local[ref][0])
                    changed = True
        for ref, (_, definition) in local.items():
            key = renamed[ref]
            if key not in self.schemas:
                self.schemas[key] = _rewrite_refs(definition, renamed, self._ref)
        body = dict(_rewrite_refs(body, renamed, self._ref))
        if set(body) == {"$ref"}:
            return body  # already a reference (a recursive model): no alias entry needed
        # A model used whole (FullPayload) and nested elsewhere is stored once, by its title.
        title = body.get("title")
        if isinstance(title, str) and self.schemas.get(safe_key(title)) == body:
            return self._ref(safe_key(title))
        key = self._keys.new(name)
        self.schemas[key] = body
        return self._ref(key)


def _rewrite_refs(value: Any, renamed: Mapping[str, str], ref: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str) and v in renamed:
                out.update(ref(renamed[v]))
            else:
                out[k] = _rewrite_refs(v, renamed, ref)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(v, renamed, ref) for v in value]
    return value


def _type_schema(tp: Any) -> dict[str, Any]:
    schema_of = getattr(tp, "model_json_schema", None)
    if callable(schema_of):
        result: dict[str, Any] = schema_of()
        return result
    try:
        import pydantic
    except ImportError:
        raise TypeError(
            f"cannot describe {tp!r} as a message payload without pydantic; pass a JSON Schema "
            "dict or an AsyncAPI Message Object instead"
        ) from None
    adapted: dict[str, Any] = pydantic.TypeAdapter(tp).json_schema()
    return adapted


# The document -------------------------------------------------------------------------------


class _Builder:
    __slots__ = (
        "channel_ids",
        "channel_keys",
        "channels",
        "message_keys",
        "messages",
        "operation_keys",
        "operations",
        "schemas",
        "seen_channel_meta",
    )

    def __init__(self) -> None:
        self.seen_channel_meta: set[int] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.channel_ids: dict[str, str] = {}  # address -> channel key
        self.channel_keys = _Keys()
        self.operations: dict[str, dict[str, Any]] = {}
        self.operation_keys = _Keys()
        self.messages: dict[str, dict[str, Any]] = {}
        self.message_keys = _Keys()
        self.schemas = _Schemas()

    def channel(self, address: str, meta: Channel | None = None) -> str:
        key = self.channel_ids.get(address)
        if key is None:
            key = self.channel_keys.new(address)
            self.channel_ids[address] = key
            self.channels[key] = {"address": address, "messages": {}}
        if meta is not None and id(meta) not in self.seen_channel_meta:
            self.seen_channel_meta.add(id(meta))
            target = self.channels[key]
            described: dict[str, Any] = {}
            _describe(described, meta)
            _put(described, "parameters", meta.parameters)
            for field, value in described.items():
                target.setdefault(field, value)
            for index, extra in enumerate(meta.messages or ()):
                self.extra_message(key, extra, f"{safe_key(address)}.message{index + 1}")
        return key

    def add_message(self, channel_key: str, name: str, message: dict[str, Any]) -> dict[str, str]:
        """Store `message` in components, list it on the channel; return the operation ref."""
        key = self.message_keys.new(name)
        self.messages[key] = message
        self.channels[channel_key]["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        return {"$ref": f"#/channels/{channel_key}/messages/{key}"}

    def extra_message(self, channel_key: str, spec: Any, name: str) -> dict[str, str]:
        if isinstance(spec, Mapping) and _MESSAGE_OBJECT_KEYS & set(spec):
            message = to_jsonable(spec)
            if "$ref" not in message:
                for part in ("payload", "headers"):
                    schema = message.get(part)
                    if isinstance(schema, Mapping) and "schemaFormat" not in schema:
                        message[part] = self.schemas.add(schema, f"{name}.{part}")
                message.setdefault("name", name)
                message.setdefault("contentType", DEFAULT_CONTENT_TYPE)
            return self.add_message(channel_key, str(message.get("name", name)), message)
        if isinstance(spec, Mapping):
            payload = self.schemas.add(to_jsonable(spec), f"{name}.payload")
        else:
            schema = _type_schema(spec)
            payload = self.schemas.add(schema, str(schema.get("title") or f"{name}.payload"))
        return self.add_message(
            channel_key,
            name,
            {"name": name, "contentType": DEFAULT_CONTENT_TYPE, "payload": payload},
        )

    def actor(self, compiled: CompiledActor) -> None:
        data = compiled.data
        channel_key = self.channel(data.channel)
        message: dict[str, Any] = {"name": data.name, "contentType": DEFAULT_CONTENT_TYPE}
        for attr in ("title", "summary", "description"):
            value = getattr(data, attr)
            if value:
                message[attr] = str(value)
        converter = compiled.converter
        payload = converter.payload_schema()
        if payload is not None:
            message["payload"] = self.schemas.add(_tidy(payload), f"{data.name}.payload")
        headers = _routing_headers(data.name, data.routing_strategy, converter.headers_schema())
        if headers is not None:
            message["headers"] = self.schemas.add(_tidy(headers), f"{data.name}.headers")
        if data.deprecated:
            message["deprecated"] = True
        refs = [self.add_message(channel_key, data.name, message)]
        for index, extra in enumerate(data.messages or ()):
            refs.append(self.extra_message(channel_key, extra, f"{data.name}.message{index + 1}"))
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": refs,
        }
        _describe(operation, data)
        _put(operation, "security", data.security)
        if data.deprecated:
            operation["x-deprecated"] = True
        self.operations[self.operation_keys.new(data.name)] = operation

    def send_operation(self, op: Operation) -> None:
        channel_key = self.channel(op.channel.address, op.channel)
        refs = [
            self.extra_message(channel_key, extra, f"{op.operation_id}.message{index + 1}")
            for index, extra in enumerate(op.messages or ())
        ]
        operation: dict[str, Any] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_key}"},
        }
        # Operation refs are filled in `finish`, once every actor has added its messages.
        operation["messages"] = refs
        _describe(operation, op)
        _put(operation, "security", op.security)
        self.operations[self.operation_keys.new(op.operation_id)] = operation

    def finish(self) -> None:
        for operation in self.operations.values():
            if operation["action"] == "send" and not operation["messages"]:
                channel_key = operation["channel"]["$ref"].rsplit("/", 1)[1]
                operation["messages"] = [
                    {"$ref": f"#/channels/{channel_key}/messages/{key}"}
                    for key in self.channels[channel_key]["messages"]
                ]
            if not operation["messages"]:
                del operation["messages"]
        for channel in self.channels.values():
            if not channel["messages"]:
                del channel["messages"]


def _tidy(schema: Mapping[str, Any] | bool) -> Any:
    """Drop an empty `required` list (draft-04 tooling rejects it; it means nothing)."""
    if isinstance(schema, Mapping) and schema.get("required") == []:
        schema = {k: v for k, v in schema.items() if k != "required"}
    return schema


def _routing_headers(
    actor_name: str, strategy: Any, headers: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The headers schema, plus the `topic` header the default routing strategy matches on."""
    if strategy is not topic_routing_strategy:
        return headers
    result: dict[str, Any] = (
        copy.deepcopy(dict(headers)) if headers is not None else {"type": "object"}
    )
    properties = dict(result.get("properties") or {})
    properties.setdefault(
        "topic",
        {
            "type": "string",
            "const": actor_name,
            "description": "Routes the message to this actor.",
        },
    )
    result["properties"] = properties
    required = list(result.get("required") or [])
    if "topic" not in required:
        required.append("topic")
    result["required"] = required
    return result


def _info(app: AsyncAPISourceT) -> dict[str, Any]:
    info: dict[str, Any] = {"title": str(app.title), "version": str(app.version)}
    if app.description:
        info["description"] = str(app.description)
    if app.terms_of_service:
        info["termsOfService"] = str(app.terms_of_service)
    _put(info, "contact", app.contact)
    _put(info, "license", app.license)
    tags = _tags(app.tags)
    if tags:
        info["tags"] = tags
    _put(info, "externalDocs", app.external_docs)
    return info


def generate_schema(app: AsyncAPISourceT) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of `app` as a JSON-ready dict (see the module docstring)."""
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(app),
        "defaultContentType": DEFAULT_CONTENT_TYPE,
    }
    servers: dict[str, Any] = {}
    server_keys = _Keys()
    for name, server in app.servers.items():
        servers[server_keys.new(name)] = _server_object(server)
    if servers:
        document["servers"] = servers

    builder = _Builder()
    for compiled in app.compile_actors(None):
        builder.actor(compiled)
    for operation in app.messages:
        builder.send_operation(operation)
    builder.finish()
    if builder.channels:
        document["channels"] = builder.channels
    if builder.operations:
        document["operations"] = builder.operations
    components: dict[str, Any] = {}
    if builder.messages:
        components["messages"] = builder.messages
    if builder.schemas.schemas:
        components["schemas"] = builder.schemas.schemas
    if components:
        document["components"] = components
    return document
