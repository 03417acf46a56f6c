"""Go template actions in a SQL file (`{{ index .Options "Namespace" }}.users`, as
supabase/auth's migrations name their schema; gobuffalo/pop fills them in with
text/template before running the file).

Before, lint stopped at the first one with a syntax error (PW901, exit 2): nothing of the
file was linted. Now each action in code, or in a dollar-quoted body, is read as the
quoted identifier it stands for, the rest is linted, and apply refuses the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.apply.api import apply_plan
from pgwarden.commands import Context, lint, load_plan
from pgwarden.errors import InputError
from pgwarden.sources.placeholders import quote_placeholders

NS = '{{ index .Options "Namespace" }}'
QUOTED = '"{{ index .Options ""Namespace"" }}"'
MIGRATION = f"""-- adds phone to {NS}.users
ALTER TABLE {NS}.users ADD COLUMN IF NOT EXISTS phone text;
CREATE OR REPLACE FUNCTION {NS}.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
DO $$
BEGIN
  UPDATE {NS}.users SET phone = '{{{{ kept }}}}' WHERE phone IS NULL;
END $$;
CREATE INDEX users_phone_idx ON {{{{.Schema}}}}.users (phone);
"""


def test_actions_in_code_and_bodies_are_read_as_identifiers() -> None:
    text, found = quote_placeholders(MIGRATION)
    assert found == (NS, "{{.Schema}}")
    assert f"ALTER TABLE {QUOTED}.users ADD" in text
    assert f"FUNCTION {QUOTED}.uid()" in text
    assert f"UPDATE {QUOTED}.users SET phone = '{{{{ kept }}}}'" in text  # not in a literal
    assert f"-- adds phone to {NS}.users" in text  # nor in a comment
    assert 'ON "{{.Schema}}".users (phone)' in text


def test_the_file_is_linted(tmp_path: Path) -> None:
    f = tmp_path / "20210710035447_add_phone.up.sql"
    f.write_text(MIGRATION)
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert plan.texts[0].placeholders == (NS, "{{.Schema}}")
    codes = {(x.code, x.location.line) for x in result.findings}
    assert ("PW901", 1) not in codes and not any(c == "PW901" for c, _ in codes)
    assert ("PW101", 10) in codes  # the plain CREATE INDEX
    assert ("PW121", 8) in codes  # the backfill in the DO block, under the ALTER's lock


def test_running_them_as_written_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "20210710035447_add_phone.up.sql"
    f.write_text(MIGRATION)
    plan = load_plan([f])
    with pytest.raises(InputError, match=r"Go template"):
        apply_plan(plan, database_url="postgresql://localhost:1/x")
