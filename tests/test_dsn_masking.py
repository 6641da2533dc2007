"""Passwords never reach a message: connection strings are masked by libpq's own parser, in
every form it accepts."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import rhythm_core
from rhythm_core.database import connect, mask
from rhythm_core.errors import DatabaseUnavailable
from rhythm_core.testing.processes import free_port

PASSWORD = "Se cr'e@t%20\\Pw!"

FORMS = {
    "url": f"postgresql://alice:{quote(PASSWORD, safe='')}@db.example:5433/app",
    "url, raw @ in the password": "postgresql://alice:Xq1@Zq2@db.example/app",
    "url, password in the query": f"postgres://db.example/app?password={quote(PASSWORD)}",
    "url, several hosts": f"postgresql://alice:{quote(PASSWORD, safe='')}@h1:5432,h2:5433/app",
    "key=value, quoted": make_conninfo(host="db.example", user="alice", password=PASSWORD),
    "key=value, spaces around =": "host = db.example password = 'my Pw!' user = alice",
    "key=value, unquoted": "host=db.example password=plainSecret1 dbname=app",
}


@pytest.mark.parametrize("dsn", list(FORMS.values()), ids=list(FORMS))
def test_every_form_is_masked_and_keeps_the_rest(dsn) -> None:
    shown = mask(dsn)
    parsed, original = conninfo_to_dict(shown), conninfo_to_dict(dsn)
    assert parsed.pop("password") == "***"
    secret = original.pop("password")
    assert secret not in shown
    if "@" in original["host"]:  # the tail of a password with a raw @ is hidden too
        assert parsed.pop("host") == "***@db.example" and "Zq2" not in shown
        original.pop("host")
    assert parsed == original


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               min_size=4))
def test_any_password_is_masked_in_both_forms(password) -> None:
    for dsn in (
        make_conninfo(host="db.example", user="alice", password=password),
        f"postgresql://alice:{quote(password, safe='')}@db.example/app",
    ):
        assert conninfo_to_dict(mask(dsn))["password"] == "***"


def test_a_string_that_does_not_parse_is_not_shown() -> None:
    assert "hunter2" not in mask("host='db password=hunter2")


@pytest.mark.parametrize(
    "dsn",
    [
        make_conninfo(host="127.0.0.1", port=str(free_port()), password=PASSWORD),
        f"postgresql://alice:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/app",
        "host='127.0.0.1 password=hunter2",
    ],
    ids=["key=value", "url", "unparseable"],
)
def test_connection_errors_through_the_api_do_not_show_the_password(dsn) -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        connect(dsn)
    for secret in (PASSWORD, quote(PASSWORD, safe=""), "hunter2", "cr'e@t"):
        assert secret not in str(raised.value)
    rhythm_core.configure(database_url=None)  # nothing changed for the rest of the run
