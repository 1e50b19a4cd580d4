"""The messages between the checker's processes: one encoder, one decoder, nothing defaulted.

Both ends are the same checker, so a key one end writes and the other does not know (or expects
and does not get) is a bug: the decoder says so instead of filling in a default.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from migration_check.findings import CheckResult, Finding, Location
from migration_check.protocol import (
    Allowed,
    CacheStoreEvent,
    ConfigAnswer,
    ConfigFailed,
    ErrorEvent,
    ProgressEvent,
    ProtocolError,
    ResultEvent,
    StartFrom,
    WorkerRequest,
    decode,
    decode_message,
    encode,
)
from migration_check.settings import FormatType, Settings

FINDING = Finding(
    kind="add_column",
    table="users",
    message="column users.email is in the models but not in the database",
    column="email",
    location=Location("models.py", 12),
    hint="add it in a revision",
)


def _request() -> WorkerRequest:
    return WorkerRequest(
        config="/p/alembic.ini",
        name="alembic",
        x_args=["tenant=a"],
        url="postgresql+asyncpg://u@/db?host=/run",
        sync_url="postgresql+psycopg://u@/db?host=/run",
        database="check_migrations_0a1b",
        create_database=True,
        throwaway_server=True,
        cache={"pg_fingerprint": "f", "startup": None, "entry": None},
        revision={"message": "add email", "rev_id": None},
        heads_expected=["a1", "b2"],
        safety="error",
        history_added=["c3"],
        admin_conninfo={"host": "/run", "port": 5432, "user": "postgres", "dbname": "postgres"},
        connect_timeout=5,
        server_label="the throwaway server",
        catalog=True,
        record_inputs=False,
        start_from=StartFrom(file="/p/schema.sql", shown="schema.sql", psql="/usr/bin/psql"),
        flask_app=None,
        progress_each=False,
        allowed=Allowed(host="/run", port=5432, database="db", databases=["db"]),
        environ={"DATABASE_URL": "postgresql://u@/db", "PGSERVICE": None},
    )


def _result() -> ResultEvent:
    return ResultEvent(
        findings=[FINDING, Finding(kind="remove_table", table=None, message="m")],
        revisions_applied=3,
        heads=["a1"],
        version_dirs=["/p/versions"],
        written=[],
        notices=["wrote create_index ix_a CONCURRENTLY"],
        revision_ids=["a1", "b0"],
        catalog_skipped="",
        warnings=[],
        safety=[{"revision": "a1", "statements": []}],
        inputs={"files": {"/p/env.py": "d"}},
        inputs_refused="",
        closure=None,
    )


MESSAGES: list[Any] = [
    ProgressEvent("upgrading 3 revision(s) to head"),
    CacheStoreEvent({"revisions": ["a1"], "env": {}}),
    CacheStoreEvent(None),
    ErrorEvent("config", "alembic.ini: no script_location", ""),
    _result(),
    ConfigAnswer(CheckResult(findings=[FINDING], heads=["a1"], fixed=[{"kind": "k"}])),
    ConfigFailed("ConfigError", "alembic.ini: no such file", "detail"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Any) -> None:
    line = encode(message)
    assert "\n" not in line  # events are newline-delimited
    assert decode_message(line) == message
    assert decode(type(message), line) == message


def test_request_and_settings_round_trip() -> None:
    request = _request()
    assert decode(WorkerRequest, encode(request)) == request
    # Each optional part absent too.
    bare = dataclasses.replace(
        request, cache=None, revision=None, heads_expected=None, history_added=None,
        start_from=None, flask_app="app:create_app", environ={},
    )  # fmt: skip
    assert decode(WorkerRequest, encode(bare)) == bare
    settings = Settings(
        x_args=("a=b",), format=FormatType.github, heads=("a1",), configs=("x.ini", "y.ini"),
        timeout=30, source={"timeout": "pyproject.toml"},
    )  # fmt: skip
    decoded = decode(Settings, encode(settings))
    assert decoded == settings
    assert decoded.source == settings.source
    assert isinstance(decoded.timeout, float)
    assert decode(Settings, encode(Settings(heads=2))).heads == 2


def _wire(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode(message))
    return data


def test_a_request_missing_a_field_fails() -> None:
    data = _wire(_request())
    del data["allowed"]
    with pytest.raises(ProtocolError, match=r"WorkerRequest: missing key\(s\) allowed"):
        decode(WorkerRequest, data)
    nested = _wire(_request())
    del nested["allowed"]["databases"]
    with pytest.raises(ProtocolError, match=r"WorkerRequest.allowed: missing key\(s\) databases"):
        decode(WorkerRequest, nested)


def test_an_unknown_key_fails() -> None:
    data = _wire(_request())
    data["mode"] = "revision"  # the old request's key, now said by revision's presence
    with pytest.raises(ProtocolError, match=r"unknown key\(s\) mode"):
        decode(WorkerRequest, data)
    event = _wire(_result())
    event["cache_store"] = None
    with pytest.raises(ProtocolError, match=r"ResultEvent: unknown key\(s\) cache_store"):
        decode_message(event)
    settings = _wire(Settings())
    settings["colour"] = True
    with pytest.raises(ProtocolError, match=r"Settings: unknown key\(s\) colour"):
        decode(Settings, settings)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"connect_timeout": "5"}, r"connect_timeout: expected int"),
        ({"create_database": 1}, r"create_database: expected bool"),
        ({"x_args": "tenant=a"}, r"x_args: expected a list"),
        ({"start_from": {"file": "f", "shown": "s"}}, r"start_from: missing key\(s\) psql"),
    ],
)
def test_a_mistyped_field_fails(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(WorkerRequest, {**_wire(_request()), **change})


def test_an_unknown_or_mistagged_message_fails() -> None:
    with pytest.raises(ProtocolError, match="unknown message type 'progres'"):
        decode_message('{"type": "progres", "message": "m"}')
    with pytest.raises(ProtocolError, match="not a 'result' message"):
        decode(ResultEvent, encode(ProgressEvent("m")))
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_message(b'{"type": "progress", "mess')
