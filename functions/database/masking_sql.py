"""Masking rules against the catalog: each column's type, whether a rule can mask it, and its SQL expression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql

from functions.database.connection import server_message
from functions.errors import ConfigError, shown
from schemas.masking import MaskingRule

# The key reaches SQL only as a setting of the masking transaction (set_config(..., is_local => true)),
# read back once per statement by an uncorrelated scalar subquery (an InitPlan): never as a literal in the
# UPDATE, which the server writes to its log when it fails (log_min_error_statement = error, the default).
KEY_SETTING = "aurora_restore.mask_key"
SAMPLE_KEY_SETTING = "aurora_restore.sample_key"
HEX_DIGITS = 64  # an HMAC-SHA256 in hex
EMAIL_HEX = 24  # 96 bits of the HMAC in a masked address: 'u' + 24 hex digits + '@' + domain
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "citext"})
# Integer types -> the bits of their positive range a hashed value fills.
INT_BITS = {"int2": 15, "int4": 31, "int8": 63}
SQL_INT = {"int2": "smallint", "int4": "integer", "int8": "bigint"}
UNIQUE_COLLISION_ODDS = 0.01  # above these odds of any collision, a unique column is refused (check_rules)


@dataclass(frozen=True)
class Column:
    """A rule's column as the catalog has it (the base type, for a column of a domain type)."""

    rule: MaskingRule
    table_found: bool
    found: bool
    type_name: str = ""  # pg_type.typname of the base type: text, varchar, int8, ...
    length: int | None = None  # varchar(n) / char(n): n
    not_null: bool = False
    identity_always: bool = False
    generated: bool = False
    unique: bool = False  # the column alone is a unique index's key (a primary key's included)
    rows: float = 0.0  # the table's rows, as the planner's statistics have them (0 if never analyzed)

    @property
    def hash_length(self) -> int:
        """How many hex digits a hashed text value keeps: 64, or n for varchar(n)/char(n) below 64."""
        return min(HEX_DIGITS, self.length or HEX_DIGITS)

    def output_bits(self) -> int | None:
        """How many bits of the HMAC a masked value keeps (None: not a keyed strategy)."""
        if self.rule.strategy == "email":
            return EMAIL_HEX * 4
        if self.rule.strategy != "hash":
            return None
        if self.type_name in INT_BITS:
            return INT_BITS[self.type_name]
        return 128 if self.type_name == "uuid" else 4 * self.hash_length

    def output_shape(self) -> tuple[Any, ...] | None:
        """What decides a masked value besides the input: equal shapes map equal inputs to equal outputs,
        so a foreign key holds between two columns exactly when their shapes are equal."""
        rule = self.rule
        if rule.strategy == "email":
            return ("email", rule.email_domain)
        if rule.strategy == "fixed":
            return ("fixed", rule.value)
        if rule.strategy == "null":
            return ("null",)
        if self.type_name in TEXT_TYPES:
            return ("hash", "text", self.hash_length)
        return ("hash", self.type_name)


_COLUMNS = """
SELECT r.ord, c.oid IS NOT NULL, a.attnum IS NOT NULL, base.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       coalesce(a.attnotnull, false), coalesce(a.attidentity = 'a', false), coalesce(a.attgenerated <> '', false),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
               AND i.indkey[0] = a.attnum),
       greatest(coalesce(c.reltuples, 0), 0)
FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS r(nsp, rel, col, ord)
LEFT JOIN pg_namespace n ON n.nspname = r.nsp
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = r.col AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
ORDER BY r.ord
"""


def columns(cursor: Any, rules: Sequence[MaskingRule]) -> list[Column]:
    """Each rule's column from the catalog, in the rules' order."""
    cursor.execute(
        _COLUMNS,
        (
            [rule.schema_name for rule in rules],
            [rule.table_name for rule in rules],
            [rule.column for rule in rules],
        ),
    )
    found = []
    for row, rule in zip(cursor.fetchall(), rules, strict=True):
        _, table_found, column_found, type_name, typmod, not_null, identity, generated, unique, rows = row
        length = typmod - 4 if type_name in ("varchar", "bpchar") and typmod and typmod > 4 else None
        found.append(
            Column(
                rule,
                table_found,
                column_found,
                type_name or "",
                length,
                not_null,
                identity,
                generated,
                unique,
                float(rows),
            )
        )
    return found


def column_problem(column: Column) -> str | None:
    """Why the rule cannot mask its column (None: it can)."""
    rule = column.rule
    if not column.table_found:
        return f"{rule.table}: no such table"
    if not column.found:
        return f"{rule.qualified}: no such column"
    if column.generated or column.identity_always:
        kind = "a generated column" if column.generated else "an identity column GENERATED ALWAYS"
        return f"{rule.qualified}: is {kind}, which cannot be updated"
    kind = column.type_name
    if rule.strategy == "email":
        if kind not in TEXT_TYPES:
            return f"{rule.qualified}: strategy email needs a text column, not {kind}"
        needed = 1 + EMAIL_HEX + 1 + len(rule.email_domain)
        if column.length is not None and column.length < needed:
            return f"{rule.qualified}: a masked address has {needed} characters, the column holds {column.length}"
    if rule.strategy == "hash" and kind not in TEXT_TYPES | set(INT_BITS) | {"uuid"}:
        return f"{rule.qualified}: strategy hash masks text, integer and uuid columns, not {kind}"
    if rule.strategy == "null" and column.not_null:
        return f"{rule.qualified}: strategy null on a NOT NULL column"
    return _collision_problem(column)


def _collision_problem(column: Column) -> str | None:
    """A unique column whose masked values are likely to collide: the UPDATE would fail on its unique
    index part way (a masked value meeting another, or a value not masked yet). Refused before anything
    changes when the odds of any collision, about rows² / 2^(bits + 1), pass UNIQUE_COLLISION_ODDS."""
    bits = column.output_bits()
    if not column.unique or bits is None or column.rows**2 / 2 ** (bits + 1) <= UNIQUE_COLLISION_ODDS:
        return None
    return (
        f"{column.rule.qualified}: unique, and its {column.rows:,.0f} rows' masked values ({bits} bits of the"
        f" hash in a {column.type_name}) would collide, failing its unique constraint; use a wider type"
        f" (bigint, or text of 24 characters or more) or mask another column"
    )


_FOREIGN_KEYS = """
SELECT cn.nspname || '.' || cc.relname || '.' || ca.attname, pn.nspname || '.' || pc.relname || '.' || pa.attname,
       k.conname
FROM pg_constraint k
CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(child, parent)
JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = u.child
JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = u.parent
WHERE k.contype = 'f' AND (cn.nspname || '.' || cc.relname = ANY(%(tables)s)
                           OR pn.nspname || '.' || pc.relname = ANY(%(tables)s))
ORDER BY 1, 2
"""


def foreign_key_problems(cursor: Any, found: Sequence[Column]) -> list[str]:
    """Every foreign key touching a rule's table whose two columns would not join once masked: the
    referencing column must be masked exactly as the referenced one (same strategy and output shape),
    or set to null."""
    shapes = {column.rule.qualified: column.output_shape() for column in found}
    cursor.execute(_FOREIGN_KEYS, {"tables": sorted({column.rule.table for column in found})})
    problems = []
    for child, parent, name in cursor.fetchall():
        child_shape, parent_shape = shapes.get(child), shapes.get(parent)
        if child_shape == parent_shape or child_shape == ("null",):
            continue
        problems.append(
            f"{child} references {parent} (foreign key {name}): mask both alike (the same strategy, and for"
            f" hash the same type and length) or neither, or the masked keys no longer join"
        )
    return problems


def check_columns(cursor: Any, rules: Sequence[MaskingRule]) -> list[Column]:
    """The rules' columns; ConfigError naming every rule that cannot run as written."""
    found = columns(cursor, rules)
    problems = [problem for problem in map(column_problem, found) if problem is not None]
    if not problems:
        problems += fixed_value_problems(cursor, found)
        problems += foreign_key_problems(cursor, found)
    if problems:
        raise ConfigError("masking_rules: " + "; ".join(problems))
    return found


def fixed_value_problems(cursor: Any, found: Sequence[Column]) -> list[str]:
    """A fixed value the column's type does not take (tried in a savepoint, so the transaction goes on)."""
    problems = []
    for column in found:
        rule = column.rule
        if rule.strategy != "fixed":
            continue
        cursor.execute("SAVEPOINT aurora_restore_fixed_value")
        try:
            cursor.execute(_fixed_probe(rule), (rule.value,))
            cursor.execute("RELEASE SAVEPOINT aurora_restore_fixed_value")
        except psycopg2.Error as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT aurora_restore_fixed_value")
            problems.append(
                f"{rule.qualified}: fixed value {shown(rule.value)} does not fit: {server_message(exc)}"
            )
    return problems


def _fixed_probe(rule: MaskingRule) -> sql.Composable:
    """An UPDATE of no row that assigns the value to the column: the server checks it as the mask would."""
    return sql.SQL("UPDATE {}.{} SET {} = %s WHERE false").format(
        sql.Identifier(rule.schema_name), sql.Identifier(rule.table_name), sql.Identifier(rule.column)
    )


def key_expression(setting: str = KEY_SETTING) -> sql.Composable:
    """The key as the statement reads it: once (an InitPlan), from the transaction's setting."""
    return sql.SQL("(SELECT current_setting({}))").format(sql.Literal(setting))


def hex_hmac(pgcrypto: str, value: sql.Composable, setting: str = KEY_SETTING) -> sql.Composable:
    """encode(hmac(value::text, key, 'sha256'), 'hex'): 64 hex digits, NULL for NULL."""
    return sql.SQL("encode({}.hmac(({})::text, {}, 'sha256'), 'hex')").format(
        sql.Identifier(pgcrypto), value, key_expression(setting)
    )


def mask_expression(column: Column, pgcrypto: str, qualifier: str | None = None) -> sql.Composable:
    """The masked value of the column, as SQL over its current value (NULL stays NULL but for fixed);
    `qualifier`: the alias of the table in the statement, which the column's name is qualified with."""
    rule = column.rule
    name = sql.Identifier(qualifier, rule.column) if qualifier else sql.Identifier(rule.column)
    if rule.strategy == "null":
        return sql.SQL("NULL")
    if rule.strategy == "fixed":
        return sql.Literal(rule.value)
    digest = hex_hmac(pgcrypto, name)
    if rule.strategy == "email":
        return sql.SQL("'u' || left({}, {}) || '@' || {}").format(
            digest, sql.Literal(EMAIL_HEX), sql.Literal(rule.email_domain)
        )
    if column.type_name in INT_BITS:
        bits = INT_BITS[column.type_name] + 1
        return sql.SQL("((('x' || left({}, {}))::bit({})::{} & {})::{})").format(
            digest,
            sql.Literal(bits // 4),
            sql.SQL(str(bits)),
            sql.SQL("bigint" if bits == 64 else "integer"),
            sql.Literal(2 ** (bits - 1) - 1),
            sql.SQL(SQL_INT[column.type_name]),
        )
    if column.type_name == "uuid":
        return sql.SQL("left({}, 32)::uuid").format(digest)
    return sql.SQL("left({}, {})").format(digest, sql.Literal(column.hash_length))
