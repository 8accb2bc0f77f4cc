"""Declarative AMQP composite types (spec part 1.4): a described list of typed fields.

A composite is a dataclass with a `_spec: CompositeSpec` class attribute naming its descriptor and
its fields in wire order. `to_described()` encodes it and `from_described()` decodes and
validates it; a field of the wrong type is an `amqp:decode-error`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.types import (
    Array,
    Described,
    Symbol,
    Timestamp,
    Ubyte,
    Uint,
    Ulong,
    Ushort,
)

__all__ = ["Composite", "CompositeSpec", "Field", "decode_composite", "register"]


def _bad(name: str, value: Any) -> AmqpProtocolError:
    return AmqpProtocolError(
        Condition.DECODE_ERROR,
        f"field {name!r} has an invalid value of type {type(value).__name__}",
    )


def _unsigned(bits: int, wrap: Callable[[int], Any]) -> tuple[Callable[[Any], Any], Any]:
    limit = (1 << bits) - 1

    def check(value: Any) -> Any:
        if type(value) is bool or not isinstance(value, int) or not 0 <= value <= limit:
            raise TypeError
        return int(value)

    return wrap, check


def _of(kind: type, wrap: Callable[[Any], Any] = lambda v: v) -> tuple[Any, Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError
        return value

    return wrap, check


def _symbols_wire(value: Any) -> Any:
    if len(value) == 1:
        return Symbol(value[0])
    return Array(Symbol, tuple(Symbol(v) for v in value))


def _symbols_check(value: Any) -> Any:
    # A `multiple="true"` field may be sent as a single value or as an array.
    if isinstance(value, str):
        return [str(value)]
    if isinstance(value, Array) and all(isinstance(v, str) for v in value.items):
        return [str(v) for v in value.items]
    raise TypeError


def _any_check(value: Any) -> Any:
    return value


def _message_id_wire(value: Any) -> Any:
    # message-id / correlation-id: ulong, uuid, binary or string; a plain int means ulong.
    if type(value) is int:
        return Ulong(value)
    return value


KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "ubyte": _unsigned(8, Ubyte),
    "ushort": _unsigned(16, Ushort),
    "uint": _unsigned(32, Uint),
    "ulong": _unsigned(64, Ulong),
    "bool": _of(bool),
    "string": _of(str, str),
    "symbol": _of(str, Symbol),
    "symbols": (_symbols_wire, _symbols_check),
    "binary": _of(bytes),
    "map": _of(dict),
    "timestamp": (Timestamp, _of(int)[1]),
    "any": (lambda v: v, _any_check),
    "message_id": (_message_id_wire, _any_check),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a composite: attribute name, wire kind, default, mandatory flag.

    `kind` is a key of `KINDS`, or a composite class (or tuple of them) for nested composites.
    """

    name: str
    kind: Any
    default: Any = None
    mandatory: bool = False


@dataclass(frozen=True, slots=True)
class CompositeSpec:
    """Descriptor code and symbolic name of a composite, with its fields in wire order."""

    code: int
    name: str
    fields: tuple[Field, ...]


_REGISTRY: dict[Any, type[Composite]] = {}

C = TypeVar("C", bound="Composite")


def register(cls: type[C]) -> type[C]:
    """Class decorator: make `decode_composite` know this composite's descriptors."""
    spec = cls._spec
    _REGISTRY[spec.code] = cls
    _REGISTRY[spec.name] = cls
    wire: list[tuple[Any, ...]] = []
    for f in spec.fields:
        if isinstance(f.kind, str):
            to_wire, check = KINDS[f.kind]
            wire.append((f.name, f.default, f.mandatory, to_wire, check, None))
        else:
            classes = f.kind if isinstance(f.kind, tuple) else (f.kind,)
            wire.append((f.name, f.default, f.mandatory, None, None, classes))
    cls._wire = tuple(wire)
    cls._descriptor = Ulong(spec.code)
    cls._fast_from_fields = _compile_from_fields(cls)
    setattr(cls, "to_described", _compile_to_described(cls))  # noqa: B010 - generated
    return cls


def _compile_to_described(cls: type[Composite]) -> Callable[[Any], Described]:
    """Generate `to_described` for `cls`: one expression per field, no per-call reflection."""
    env: dict[str, Any] = {"Described": Described, "DESCRIPTOR": Ulong(cls._spec.code)}
    items = []
    for i, f in enumerate(cls._spec.fields):
        if isinstance(f.kind, str):
            env[f"W{i}"] = KINDS[f.kind][0]
            convert = f"W{i}(v)"
        else:
            convert = "v.to_described()"
        if f.default is None:
            test = f"(v := self.{f.name}) is None"
        else:
            env[f"D{i}"] = f.default
            test = f"(v := self.{f.name}) is None or v == D{i}"  # null means "the default"
        items.append(f"        None if {test} else {convert},")
    lines = [
        "def to_described(self):",
        "    values = [",
        *items,
        "    ]",
        "    while values and values[-1] is None:",
        "        values.pop()",
        "    return Described(DESCRIPTOR, values)",
    ]
    # The source is built from the static field specs only, never from input.
    exec("\n".join(lines), env)
    function: Callable[[Any], Described] = env["to_described"]
    function.__doc__ = "The described-list form of this value, ready for `types.encode`."
    return function


_UNSIGNED_LIMITS = {"ubyte": 0xFF, "ushort": 0xFFFF, "uint": 0xFFFFFFFF, "ulong": (1 << 64) - 1}


def _compile_from_fields(cls: type[Composite]) -> Callable[[list[Any]], Any]:
    """Generate a straight-line field decoder for `cls` (the hot path of every frame).

    Any invalid or missing field makes it fall back to the generic `from_fields`, which raises
    the precise `amqp:decode-error`.
    """
    env: dict[str, Any] = {
        "cls": cls,
        "Described": Described,
        "decode_composite": decode_composite,
        "symbols_check": _symbols_check,
    }
    lines = ["def fast(fields):", "    n = len(fields)", "    try:", "        pass"]
    names = []
    for i, f in enumerate(cls._spec.fields):
        arg = f"a{i}"
        names.append(f"{f.name}={arg}")
        env[f"D{i}"] = f.default
        lines.append(f"        v = fields[{i}] if n > {i} else None")
        lines.append("        if v is None:")
        lines.append("            raise TypeError" if f.mandatory else f"            {arg} = D{i}")
        lines.append("        else:")
        kind = f.kind
        if isinstance(kind, str) and kind in _UNSIGNED_LIMITS:
            limit = _UNSIGNED_LIMITS[kind]
            lines.append(
                "            if v.__class__ is bool or not isinstance(v, int) "
                f"or not 0 <= v <= {limit}:"
            )
            lines.append("                raise TypeError")
        elif kind == "bool":
            lines.append("            if v is not True and v is not False:")
            lines.append("                raise TypeError")
        elif kind in ("string", "symbol"):
            lines.append("            if not isinstance(v, str):")
            lines.append("                raise TypeError")
        elif kind == "binary":
            lines.append("            if not isinstance(v, bytes):")
            lines.append("                raise TypeError")
        elif kind == "map":
            lines.append("            if not isinstance(v, dict):")
            lines.append("                raise TypeError")
        elif kind == "timestamp":
            lines.append("            if not isinstance(v, int):")
            lines.append("                raise TypeError")
        elif kind == "symbols":
            lines.append("            v = symbols_check(v)")
        elif kind in ("any", "message_id"):
            pass
        else:
            env[f"K{i}"] = kind if isinstance(kind, tuple) else (kind,)
            lines.append("            if v.__class__ is not Described:")
            lines.append("                raise TypeError")
            lines.append("            v = decode_composite(v)")
            lines.append(f"            if not isinstance(v, K{i}):")
            lines.append("                raise TypeError")
        lines.append(f"            {arg} = v")
    lines.append("    except TypeError:")
    lines.append("        return cls._slow_from_fields(fields)")
    lines.append(f"    return cls({', '.join(names)})")
    # The source is built above from the static field specs only, never from input.
    exec("\n".join(lines), env)
    fast: Callable[[list[Any]], Any] = env["fast"]
    return fast


class Composite:
    """Base of all composites; subclasses are dataclasses registered with `@register`."""

    __slots__ = ()
    _spec: ClassVar[CompositeSpec]
    _wire: ClassVar[tuple[tuple[Any, ...], ...]]
    _descriptor: ClassVar[Ulong]

    def to_described(self) -> Described:
        """The described-list form of this value, ready for `types.encode`."""
        values: list[Any] = []
        for name, default, _mandatory, to_wire, _check, _classes in self._wire:
            value = getattr(self, name)
            if value is None or (value == default and default is not None):
                values.append(None)  # null means "the default" on the wire
            elif to_wire is not None:
                values.append(to_wire(value))
            else:
                values.append(value)  # nested composite: encoded through to_described()
        while values and values[-1] is None:
            values.pop()
        return Described(self._descriptor, values)

    _fast_from_fields: ClassVar[Callable[[list[Any]], Any]]

    @classmethod
    def from_fields(cls: type[C], fields: list[Any]) -> C:
        """Build from a decoded field list, validating every field."""
        result: C = cls._fast_from_fields(fields)
        return result

    @classmethod
    def _slow_from_fields(cls: type[C], fields: list[Any]) -> C:
        kwargs: dict[str, Any] = {}
        wire = cls._wire
        for index, (name, default, mandatory, _to_wire, check, classes) in enumerate(wire):
            value = fields[index] if index < len(fields) else None
            if value is None:
                if mandatory:
                    raise AmqpProtocolError(
                        Condition.DECODE_ERROR,
                        f"mandatory field {name!r} of {cls._spec.name} is missing",
                    )
                kwargs[name] = default
                continue
            if classes is not None:
                if not isinstance(value, Described):
                    raise _bad(name, value)
                value = decode_composite(value)
                if not isinstance(value, classes):
                    raise _bad(name, value)
                kwargs[name] = value
                continue
            try:
                kwargs[name] = check(value)
            except TypeError:
                raise _bad(name, value) from None
        return cls(**kwargs)


def decode_composite(value: Any) -> Composite:
    """Turn a decoded `Described` into its registered composite class."""
    if not isinstance(value, Described):
        raise AmqpProtocolError(Condition.DECODE_ERROR, "expected a described type")
    descriptor = value.descriptor
    cls = None
    if isinstance(descriptor, (int, str)) and not isinstance(descriptor, bool):
        cls = _REGISTRY.get(descriptor)
    if cls is None:
        raise AmqpProtocolError(Condition.DECODE_ERROR, f"unknown descriptor {value.descriptor!r}")
    fields = value.value
    if not isinstance(fields, list):
        raise AmqpProtocolError(
            Condition.DECODE_ERROR, f"{cls._spec.name} is not encoded as a list"
        )
    return cls.from_fields(fields)
