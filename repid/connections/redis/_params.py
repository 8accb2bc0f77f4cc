"""Validation of the Redis `server_specific_parameters` of a publish (XADD options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["XAddOptions", "parse_xadd_options"]

_ALLOWED = frozenset({"maxlen", "approximate", "nomkstream", "stream_id"})


@dataclass(frozen=True, slots=True)
class XAddOptions:
    """XADD options of seed 002 (`approximate` defaults to True)."""

    maxlen: int | None = None
    approximate: bool = True
    nomkstream: bool = False
    stream_id: str = "*"

    def command_args(self) -> list[Any]:
        """The XADD arguments between the key and the fields, for use inside a Lua script."""
        args: list[Any] = []
        if self.nomkstream:
            args.append("NOMKSTREAM")
        if self.maxlen is not None:
            args += ["MAXLEN", "~" if self.approximate else "=", self.maxlen]
        args.append(self.stream_id)
        return args

    def command_bytes(self) -> list[bytes]:
        """`command_args` as bytes, for commands packed by hand."""
        return [str(arg).encode() for arg in self.command_args()]


DEFAULT_XADD = XAddOptions()


def parse_xadd_options(params: dict[str, Any] | None) -> XAddOptions:
    """Check `params` and return the options; unknown names and wrong types raise ValueError."""
    if not params:
        return DEFAULT_XADD
    unknown = params.keys() - _ALLOWED
    if unknown:
        raise ValueError(
            f"unknown Redis server_specific_parameters {sorted(unknown)}; "
            f"allowed: {sorted(_ALLOWED)}"
        )
    maxlen = params.get("maxlen")
    if maxlen is not None and (
        not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 0
    ):
        raise ValueError(f"'maxlen' must be a non-negative int, got {maxlen!r}")
    approximate = params.get("approximate", True)
    if not isinstance(approximate, bool):
        raise ValueError(f"'approximate' must be a bool, got {approximate!r}")
    nomkstream = params.get("nomkstream", False)
    if not isinstance(nomkstream, bool):
        raise ValueError(f"'nomkstream' must be a bool, got {nomkstream!r}")
    stream_id = params.get("stream_id", "*")
    if not isinstance(stream_id, str) or not stream_id:
        raise ValueError(f"'stream_id' must be a non-empty str, got {stream_id!r}")
    return XAddOptions(
        maxlen=maxlen, approximate=approximate, nomkstream=nomkstream, stream_id=stream_id
    )
