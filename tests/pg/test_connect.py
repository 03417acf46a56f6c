"""What a DSN's server is called in messages, fleet limits and notifications."""

from pgwarden.fleet.targets import Target, server_of
from pgwarden.notify.body import RunContext
from pgwarden.pg.connect import describe_dsn


def test_messages_fleet_limits_and_notifications_name_the_same_server() -> None:
    for dsn, described, server in [
        ("postgresql://bob:pw@db.example:6543/shop", "bob@db.example:6543/shop", "db.example:6543"),
        ("postgresql://db.example/shop", "db.example:5432/shop", "db.example:5432"),
        ("postgresql:///shop", "localhost:5432/shop", "localhost:5432"),
        # no host: libpq connects to hostaddr (the three said localhost, or disagreed)
        ("hostaddr=10.1.2.3 port=6432 dbname=shop", "10.1.2.3:6432/shop", "10.1.2.3:6432"),
    ]:
        assert describe_dsn(dsn) == described
        assert server_of(Target("t", dsn)) == server
        assert RunContext.of("apply", None, dsn).server == server


def test_an_unparseable_dsn_is_not_echoed() -> None:
    dsn = "postgresql://bob:s3cret@db.example/shop?nosuch=1"
    assert describe_dsn(dsn) == "<unparseable DSN>"
    assert server_of(Target("t", dsn)) == "?"


def test_a_bad_option_value_is_named_not_blamed_on_the_server() -> None:
    import pytest

    from pgwarden.errors import ConnectionFailed
    from pgwarden.pg.connect import connect

    with pytest.raises(ConnectionFailed) as err:
        connect("host=127.0.0.1 port=1 dbname=x password=s3cret sslmode=bogus")
    assert 'invalid sslmode value: "bogus"' in err.value.message
    assert err.value.hint is not None and "option's value" in err.value.hint
    assert "s3cret" not in err.value.message + err.value.hint
