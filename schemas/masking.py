"""The masking rules: which column of which table is masked, and how (configuration field masking_rules)."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from schemas.common import TableName

Strategy = Literal["email", "hash", "null", "fixed"]
STRATEGIES: tuple[str, ...] = ("email", "hash", "null", "fixed")
DEFAULT_EMAIL_DOMAIN = "example.invalid"  # RFC 2606: a name that can never receive mail

ColumnName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"),
    Field(description="A PostgreSQL column name (an unquoted identifier, as the catalog spells it)"),
]
EmailDomain = Annotated[
    str,
    StringConstraints(
        max_length=200,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
    ),
    Field(description="The domain of the masked addresses (strategy email); default example.invalid"),
]


class MaskingRule(BaseModel):
    """One column to mask. `value` only with `fixed` (and then required), `domain` only with `email`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: TableName = Field(description='"schema.table"')
    column: ColumnName
    strategy: Strategy
    value: str | None = Field(default=None, description="The value every row gets (strategy fixed)")
    domain: EmailDomain | None = Field(default=None, description="Domain of masked addresses (email)")

    @model_validator(mode="after")
    def _options_fit_strategy(self) -> "MaskingRule":
        if self.strategy == "fixed" and self.value is None:
            raise ValueError(f"{self.qualified}: strategy fixed needs a value")
        if self.strategy != "fixed" and self.value is not None:
            raise ValueError(f"{self.qualified}: value is only for strategy fixed")
        if self.strategy != "email" and self.domain is not None:
            raise ValueError(f"{self.qualified}: domain is only for strategy email")
        if self.value is not None and "\x00" in self.value:
            raise ValueError(f"{self.qualified}: value holds a NUL character, which PostgreSQL cannot take")
        return self

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def qualified(self) -> str:
        """'schema.table.column': the key of sample_before's and masked_sample_hits's answers."""
        return f"{self.table}.{self.column}"

    @property
    def email_domain(self) -> str:
        return self.domain or DEFAULT_EMAIL_DOMAIN


def _one_rule_per_column(rules: list[MaskingRule]) -> list[MaskingRule]:
    names = [rule.qualified for rule in rules]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"more than one rule for the same column: {', '.join(twice)}")
    return rules


MaskingRules = Annotated[list[MaskingRule], AfterValidator(_one_rule_per_column)]


@cache
def _rules_adapter() -> TypeAdapter[list[MaskingRule]]:
    """Built on first use: no handler parses rules apart (RestoreConfig's field checks them), so no cold
    start builds it."""
    return TypeAdapter(MaskingRules)


def parse_rules(raw: Any) -> list[MaskingRule]:
    """`raw` (a list of dicts, as the configuration holds it) as rules; pydantic's ValidationError (a
    ValueError) saying what is wrong, as for every other configuration field."""
    return _rules_adapter().validate_python(raw)
