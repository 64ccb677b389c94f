"""The masking rule model: what a rule may say, and what it refuses before any database is touched."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.masking import DEFAULT_EMAIL_DOMAIN, parse_rules


def rule(**fields: Any) -> dict[str, Any]:
    return {"table": "public.users", "column": "email", "strategy": "email", **fields}


def test_a_rule_names_its_column_and_email_defaults_to_an_undeliverable_domain() -> None:
    (parsed,) = parse_rules([rule()])
    assert (parsed.schema_name, parsed.table_name, parsed.qualified) == (
        "public",
        "users",
        "public.users.email",
    )
    assert parsed.email_domain == DEFAULT_EMAIL_DOMAIN == "example.invalid"
    assert parse_rules([rule(domain="masked.test")])[0].email_domain == "masked.test"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "fixed"}, "strategy fixed needs a value"),
        ({"strategy": "hash", "value": "x"}, "value is only for strategy fixed"),
        ({"strategy": "hash", "domain": "masked.test"}, "domain is only for strategy email"),
        ({"strategy": "fixed", "value": "a\x00b"}, "NUL"),
        ({"strategy": "shuffle"}, "Input should be 'email', 'hash', 'null' or 'fixed'"),
        ({"table": "users"}, "String should match pattern"),
        ({"column": 'e"mail'}, "String should match pattern"),
        ({"domain": "localhost"}, "String should match pattern"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_rule_that_cannot_mean_one_thing_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_rules([rule(**fields)])


def test_two_rules_for_one_column_are_refused() -> None:
    with pytest.raises(ValidationError, match="more than one rule for the same column: public.users.email"):
        parse_rules([rule(), rule(strategy="hash")])
    # the same column name in another table is another column
    assert len(parse_rules([rule(), rule(table="public.customers")])) == 2
