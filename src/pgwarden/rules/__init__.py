"""The registry: every rule, in code order. Building it rejects duplicate codes.

One line per rule: the module's name in `_MODULES`. Each module exports `RULE`;
a test checks every module under rules/ is listed here, documented and has cases.
"""

from __future__ import annotations

from importlib import import_module

from pgwarden.rules.base import Rule

__all__ = ["ALL_RULES", "Rule", "by_code"]

_MODULES = (
    "pw101_index_built_without_concurrently",
    "pw102_foreign_key_validated_under_lock",
    "pw103_not_null_set_with_table_scan",
    "pw104_table_rewritten_under_lock",
    "pw105_unique_constraint_builds_index_under_lock",
    "pw106_check_constraint_validated_under_lock",
    "pw107_exclusion_constraint_builds_index_under_lock",
    "pw108_domain_constraint_validated_under_lock",
    "pw110_table_rewritten_by_vacuum_full_or_cluster",
    "pw111_reindex_without_concurrently",
    "pw112_materialized_view_refreshed_under_lock",
    "pw113_partition_detached_under_lock",
    "pw114_partition_attached_with_scan",
    "pw115_relation_moved_to_tablespace",
    "pw120_lock_timeout_missing",
    "pw121_strong_lock_held_across_statements",
    "pw122_lock_timeout_too_long",
    "pw130_concurrently_inside_transaction",
    "pw131_enum_value_used_before_commit",
    "pw132_transaction_left_open",
    "pw133_dynamic_sql_not_analysed",
    "pw134_type_change_fails_without_using",
    "pw135_default_references_a_column",
    "pw140_whole_table_update_or_delete",
    "pw141_not_null_column_added_without_default",
    "pw142_dml_touches_many_rows",
    "pw201_table_dropped",
    "pw202_column_dropped",
    "pw203_column_renamed",
    "pw204_table_renamed",
    "pw205_table_truncated",
    "pw206_schema_dropped",
    "pw207_index_dropped_without_concurrently",
    "pw208_cascade_drops_dependents",
    "pw209_schema_renamed",
    "pw210_database_dropped",
    "pw211_not_null_dropped",
    "pw212_index_dropped_while_used",
    "pw213_foreign_keys_unenforced",
    "pw214_owned_objects_dropped",
    "pw301_int_primary_key",
    "pw302_timestamp_without_time_zone",
    "pw303_varchar_length_limit",
    "pw304_char_column",
    "pw305_serial_column",
    "pw306_json_column",
    "pw402_created_table_already_exists",
)


def _registry(*rules: Rule) -> tuple[Rule, ...]:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.code in seen or rule.name in seen.values():
            raise ValueError(f"duplicate rule {rule.code} {rule.name}")
        seen[rule.code] = rule.name
    return tuple(sorted(rules, key=lambda r: r.code))


def _rule(module: str) -> Rule:
    rule = import_module(f"{__name__}.{module}").RULE
    if not isinstance(rule, Rule):
        raise TypeError(f"{module}.RULE is not a Rule")
    return rule


ALL_RULES: tuple[Rule, ...] = _registry(*(_rule(m) for m in _MODULES))


def by_code(code: str) -> Rule | None:
    """The rule with that code (or name)."""
    return next((r for r in ALL_RULES if code in (r.code, r.name)), None)
