"""What explain assumes about SQL it does not analyse says where that SQL is: a string
passed to a function is not 'a PL/pgSQL body'."""

from __future__ import annotations

from pgwarden import commands

RUN = "select run_sql($$create index orders_created_at_idx on orders (created_at)$$)"


def test_the_not_analysed_sql_of_a_string_names_the_function() -> None:
    step = commands.explain(RUN).steps[0]
    assert step.effects.assumptions == (
        "Not analysed: `create index orders_created_at_idx on orders (created_at)` in the SQL"
        " passed to run_sql() at line 1.",
    )


def test_the_not_analysed_sql_of_a_do_block_names_the_block() -> None:
    step = commands.explain(
        "DO $$ BEGIN EXECUTE 'ALTER TABLE ' || 't' || ' ADD c int'; END $$"
    ).steps[0]
    assert step.effects.assumptions == (
        "Not analysed: `'ALTER TABLE ' || 't' || ' ADD c int'` in the DO block at line 1.",
    )
