"""`PydanticConverter`: validation and coercion of payloads and headers with Pydantic v2."""

from __future__ import annotations

from typing import Any

from repid.connections.abc import BaseMessageT
from repid.dependencies.resolver import FULL_PAYLOAD_KEY, REQUIRED, InputSpec

try:
    import pydantic
except ImportError:  # pragma: no cover - exercised in the no-pydantic test environment
    pydantic = None  # type: ignore[assignment]

__all__ = ["PydanticConverter"]


def _model_name(owner: str, suffix: str) -> str:
    # Actor names are free-form (they are routing topics); model names must be identifiers.
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in owner).split()
    cleaned = "".join(word[:1].upper() + word[1:] for word in words)
    return f"{cleaned or 'Actor'}{suffix}"


class PydanticConverter:
    """Validate the payload against the actor's (and its dependencies') annotations.

    One Pydantic model holds every payload field; it is built once per actor and validates
    straight from the JSON bytes (`validate_json`), so coercion (`"123"` -> `123`), constraints
    (`Annotated[int, Gt(0)]`), `Field` defaults and nested models all apply in a single pass.
    Headers get a second model, validated from the headers dict, only if the actor reads any.
    Invalid input raises `pydantic.ValidationError` before the actor body runs.
    """

    __slots__ = (
        "_full_adapter",
        "_header_keys",
        "_headers_model",
        "_payload_model",
        "_payload_validator",
        "_renames",
    )

    def __init__(self, spec: InputSpec) -> None:
        if pydantic is None:
            raise ImportError("PydanticConverter needs pydantic v2: pip install 'repid[pydantic]'")
        self._payload_model: type[pydantic.BaseModel] | None = None
        self._payload_validator: Any = None
        # Parameter names that pydantic treats specially (a leading underscore makes a private
        # attribute; `json`, `schema`, `copy`... shadow BaseModel methods) get a neutral field
        # name with the parameter name as alias, and are renamed back after validation.
        self._renames: dict[str, str] | None = None
        if spec.payload_fields:
            fields: dict[str, Any] = {}
            for index, (name, f) in enumerate(spec.payload_fields.items()):
                default = ... if f.default is REQUIRED else f.default
                if name.startswith("_") or hasattr(pydantic.BaseModel, name):
                    safe = f"p{index}_"
                    self._renames = self._renames or {}
                    self._renames[safe] = name
                    fields[safe] = (
                        f.annotation,
                        pydantic.Field(default, validation_alias=name),
                    )
                else:
                    fields[name] = (f.annotation, default)
            self._payload_model = pydantic.create_model(
                _model_name(spec.owner, "Payload"), **fields
            )
            self._payload_validator = self._payload_model.__pydantic_validator__
        self._full_adapter: pydantic.TypeAdapter[Any] | None = (
            pydantic.TypeAdapter(spec.full_payload) if spec.wants_full_payload else None
        )
        self._headers_model: type[pydantic.BaseModel] | None = None
        self._header_keys: dict[str, str] = {}
        if spec.header_fields:
            header_fields: dict[str, Any] = {}
            for index, (key, header) in enumerate(spec.header_fields.items()):
                # Header names are rarely identifiers ("X-Trace-Id"): use a safe field name and
                # the header name as the alias.
                field_name = f"h{index}"
                self._header_keys[field_name] = key
                default = ... if header.default is REQUIRED else header.default
                header_fields[field_name] = (
                    header.annotation,
                    pydantic.Field(default, alias=key),
                )
            self._headers_model = pydantic.create_model(
                _model_name(spec.owner, "Headers"), **header_fields
            )

    def convert_inputs(self, message: BaseMessageT) -> tuple[dict[str, Any], dict[str, Any]]:
        payload_values: dict[str, Any]
        raw = message.payload
        if self._payload_validator is not None:
            payload_values = self._payload_validator.validate_json(raw or b"{}").__dict__
            renames = self._renames
            if renames is not None:
                payload_values = {renames.get(k, k): v for k, v in payload_values.items()}
        else:
            payload_values = {}
        if self._full_adapter is not None:
            full = self._full_adapter.validate_json(raw or b"{}")
            if payload_values:
                payload_values = dict(payload_values)
            payload_values[FULL_PAYLOAD_KEY] = full
        if self._headers_model is None:
            return payload_values, _EMPTY
        validated = self._headers_model.model_validate(message.headers or {})
        header_values = {
            self._header_keys[name]: value for name, value in validated.__dict__.items()
        }
        return payload_values, header_values

    def payload_schema(self) -> dict[str, Any] | None:
        if self._full_adapter is not None:
            return self._full_adapter.json_schema()
        if self._payload_model is None:
            return None
        return self._payload_model.model_json_schema()

    def headers_schema(self) -> dict[str, Any] | None:
        if self._headers_model is None:
            return None
        return self._headers_model.model_json_schema(by_alias=True)


_EMPTY: dict[str, Any] = {}
