"""A webhook URL carrying credentials (https://user:token@host/hook) is delivered with them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.notify.receiver import receiver


def test_a_url_with_user_and_password_is_posted_with_basic_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pgwarden.cli.notify import notify

    (tmp_path / "pgwarden.toml").write_text('[[notify.webhooks]]\nurl_env = "HOOK_A"\n')
    monkeypatch.chdir(tmp_path)
    with receiver() as rx:
        # a relay behind basic auth; the password holds characters a URL must escape
        url = rx.url.replace("http://", "http://relay:p%40ss%3Aw0rd-S3CRET@")
        monkeypatch.setenv("HOOK_A", url)
        result = CliRunner().invoke(notify, ["test"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("delivered webhook #1 (HOOK_A)")
    (headers,) = rx.headers
    expected = base64.b64encode(b"relay:p@ss:w0rd-S3CRET").decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert headers["path"] == f"/hooks/{rx.token}"
    assert "S3CRET" not in result.output and "T0KEN" not in result.output
