"""The state store's DynamoDB attribute values: what boto3's serializer wrote, without importing boto3."""

from __future__ import annotations

from decimal import Decimal, Inexact
from typing import Any

import pytest

from functions.state import _json_document, from_attribute, from_item, plain_value, to_attribute, to_item

NESTED: dict[str, Any] = {
    "text": "restore",
    "count": 3,
    "big": 12345678901234567890,
    "negative": -7,
    "ratio": 0.1,
    "tiny": 2.5e-7,
    "huge": 1e20,
    "exact": Decimal("1.50"),
    "flag": True,
    "off": False,
    "nothing": None,
    "empty_map": {},
    "empty_list": [],
    "history": [{"step": "copy_snapshot", "attempt": 2, "took": 1.25, "error": None}, ["a", 1, [True]]],
    "users": {"op-1", "op-2"},
}


def test_a_nested_document_survives_the_round_trip() -> None:
    # Given a document with every kind of value the state item holds, nested in maps and lists
    # When it is written as DynamoDB attributes and read back
    back = from_item(to_item(NESTED))

    # Then every value is what went in: numbers come back as Decimals of the same value (floats exactly,
    # through their shortest repr), the set of strings as a set
    assert plain_value(back) == plain_value({**NESTED, "exact": 1.5})
    assert back["ratio"] == Decimal("0.1") and float(back["ratio"]) == 0.1
    assert back["exact"] == Decimal("1.50")
    assert back["users"] == {"op-1", "op-2"}
    assert back["nothing"] is None and back["flag"] is True and back["off"] is False


def test_each_python_type_has_its_attribute_type() -> None:
    # Given one value of each type
    # When each is written
    # Then the attribute types are DynamoDB's: bool is BOOL (not N), numbers are N as text, sets of strings SS
    assert to_attribute("x") == {"S": "x"}
    assert to_attribute(True) == {"BOOL": True}
    assert to_attribute(None) == {"NULL": True}
    assert to_attribute(7) == {"N": "7"}
    assert to_attribute(0.1) == {"N": "0.1"}
    assert to_attribute(Decimal("2.50")) == {"N": "2.50"}
    assert to_attribute({"a": [1]}) == {"M": {"a": {"L": [{"N": "1"}]}}}
    assert to_attribute({"b", "a"}) == {"SS": ["a", "b"]}
    assert from_attribute({"N": "42"}) == Decimal(42)
    assert from_attribute({"SS": ["a"]}) == {"a"}


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), Decimal("1" * 39), set(), {"a", 1}, object()],
    # ids alike in every process (a set's or an object's repr is not): pytest-xdist's workers compare them
    ids=["nan", "inf", "39-digits", "empty-set", "mixed-set", "object"],
)
def test_what_dynamodb_cannot_hold_is_refused_not_rounded(value: Any) -> None:
    # Given a value DynamoDB cannot store exactly (not finite, over 38 digits, an empty or mixed set, ...)
    # When it is written
    # Then it is an error, never a silently changed number
    with pytest.raises((TypeError, Inexact)):
        to_attribute(value)


def test_we_write_and_read_what_boto3_did() -> None:
    # Given boto3's serializer, which the state store used before (a test dependency only)
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    # and a document as the store prepares one (a model's JSON dump, floats made Decimals), plus a string set
    document = _json_document({key: value for key, value in NESTED.items() if key != "users"})
    document["users"] = NESTED["users"]

    # When both write it
    ours, theirs = (
        to_item(document),
        {key: TypeSerializer().serialize(value) for key, value in document.items()},
    )

    # Then the attributes are the same (a set's order aside) and each reads the other's back alike
    ours_sets, theirs_sets = ours.pop("users"), theirs.pop("users")
    assert ours == theirs
    assert sorted(ours_sets["SS"]) == sorted(theirs_sets["SS"])
    deserializer = TypeDeserializer()
    assert from_item(theirs) == {key: deserializer.deserialize(value) for key, value in ours.items()}
