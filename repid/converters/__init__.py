"""Converters turn message payloads and headers into actor arguments."""

from repid.converters.abc import ConverterFactoryT, ConverterT
from repid.converters.basic import BasicConverter
from repid.converters.default import DefaultConverter
from repid.converters.pydantic import PydanticConverter

__all__ = [
    "BasicConverter",
    "ConverterFactoryT",
    "ConverterT",
    "DefaultConverter",
    "PydanticConverter",
]
