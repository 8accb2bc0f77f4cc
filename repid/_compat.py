"""repid 2.x keyword names accepted beside ours: the one helper every constructor uses.

A 2.x name either means what one of our names means (possibly in other units: `block_ms` is
our `block` in milliseconds) and is converted by `renamed`, or it is refused by `refuse` with
an error that says what to use instead. Giving both a name and its 2.x spelling is an error
too, so no value is silently ignored. The table of every 2.x name and what it became is in
docs/migration/from-repid-2.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from repid.errors import ConfigurationError

__all__ = ["UNSET", "refuse", "renamed"]

T = TypeVar("T")
U = TypeVar("U")


class _Unset:
    """The default of a 2.x keyword: tells "not given" apart from an explicit None."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""Default of every 2.x keyword (typed Any so that it fits any annotation)."""


def renamed(
    owner: str,
    name: str,
    value: T,
    old_name: str,
    old_value: U,
    convert: Callable[[U], T] | None = None,
) -> T:
    """`value`, or else the 2.x keyword `old_name`'s `old_value` passed through `convert`.

    `value` counts as given unless it is `UNSET`; `old_value` likewise. Both given raises
    `ConfigurationError`.
    """
    if old_value is UNSET:
        return value
    if value is not UNSET:
        raise ConfigurationError(
            f"{owner} got both {name}= and {old_name}= (its repid 2.x name); pass only {name}="
        )
    if convert is None:
        return old_value  # type: ignore[return-value]
    return convert(old_value)


def refuse(owner: str, old_name: str, instead: str) -> NoReturn:
    """Raise the error for a repid 2.x keyword that has no equivalent here."""
    raise ConfigurationError(f"{owner} no longer takes {old_name}= (repid 2.x): {instead}")
