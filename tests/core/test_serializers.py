"""`repid.serializers.default_serializer`: the JSON every `send_message_json` publishes."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import threading
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repid.serializers import default_serializer


def _reference(data: Any) -> bytes:
    """What the standard library's encoder writes with the same options."""
    from repid.serializers import _to_jsonable

    return json.dumps(
        data, default=_to_jsonable, ensure_ascii=False, separators=(",", ":")
    ).encode()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_json_like = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text() | st.integers() | st.booleans() | st.none(), children, max_size=5
        )
    ),
    max_leaves=30,
)


@given(_json_like)
def test_output_is_what_the_standard_encoder_writes(data: Any) -> None:
    assert default_serializer(data) == _reference(data)


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_objects_json_cannot_encode_go_through_the_fallback() -> None:
    payload = {
        "when": datetime.datetime(2026, 12, 2, 10, 30),
        "day": datetime.date(2026, 12, 2),
        "wait": datetime.timedelta(seconds=90),
        "id": uuid.UUID(int=7),
        "price": decimal.Decimal("1.10"),
        "colour": Colour.RED,
        "tags": ("a", "b"),
        "raw": b"bytes",
        "point": Point(1, 2),
    }
    assert json.loads(default_serializer(payload)) == {
        "when": "2026-12-02T10:30:00",
        "day": "2026-12-02",
        "wait": 90.0,
        "id": "00000000-0000-0000-0000-000000000007",
        "price": "1.10",
        "colour": "red",
        "tags": ["a", "b"],
        "raw": "bytes",
        "point": {"x": 1, "y": 2},
    }


def test_non_ascii_is_written_as_utf8() -> None:
    assert default_serializer({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_a_circular_structure_raises_value_error_and_the_next_call_works() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        default_serializer(looped)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        default_serializer({"outer": cyclic})
    assert default_serializer({"a": [1]}) == b'{"a":[1]}'


def test_an_unknown_type_raises_type_error_and_the_next_call_works() -> None:
    shared = {"same": 1}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        default_serializer({"first": shared, "bad": object()})
    # A marker table left dirty by the failure would call this dict a circular reference.
    assert default_serializer({"again": shared}) == b'{"again":{"same":1}}'


def test_one_object_encoded_from_many_threads_at_once() -> None:
    class Slow:
        """Its conversion lets other threads run while the C encoder is inside `shared`."""

        def model_dump(self, mode: str) -> dict[str, int]:
            threading.Event().wait(0.001)
            return {"v": 1}

    shared = {"items": [Slow() for _ in range(5)]}
    expected = b'{"items":[{"v":1},{"v":1},{"v":1},{"v":1},{"v":1}]}'
    errors: list[BaseException] = []
    outputs: list[bytes] = []

    def encode() -> None:
        try:
            for _ in range(20):
                outputs.append(default_serializer(shared))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=encode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outputs == [expected] * 80
