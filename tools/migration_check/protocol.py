"""What passes between the checker's processes: one definition every end imports.

Stdlib only. The CLI writes the worker's request (stdin) and reads its events (the event pipe);
the worker (and the resident worker's forks) read the request and write the events. A
several-config run hands each child its settings and reads back its answer the same way. Every
message is a dataclass, and one encoder and one decoder carry all of them: a key the reader does
not know, or one it expects and does not get, is a ``ProtocolError``, never a silent default
(both ends are the same checker, so a mismatch is a bug to see). A cached migrated database is
part of the contract too: the worker writes its entry, the CLI reads it back in a later run.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, Union

from migration_check.findings import CheckResult, Finding

__all__ = [
    "MIGRATED_FORMAT",
    "Allowed",
    "CacheStoreEvent",
    "ConfigAnswer",
    "ConfigFailed",
    "Emit",
    "ErrorEvent",
    "Event",
    "ProgressEvent",
    "ProtocolError",
    "ResultEvent",
    "StartFrom",
    "WorkerRequest",
    "decode",
    "decode_message",
    "encode",
    "to_wire",
]

# The layout of a migrated-database cache entry. 2: entries record the closure of loaded modules
# (fingerprints/closure.py). 3: and what the upgrade read (fingerprints/inputs.py), and the
# interpreter and getenv variables (fingerprints/startup.py).
MIGRATED_FORMAT = 3

T = TypeVar("T")


class ProtocolError(ValueError):
    """A message that is not what this checker writes: unknown, missing or mistyped keys."""


# --- the worker's request --------------------------------------------------------------------


@dataclass
class Allowed:
    """Where the worker's connection guard (worker/guard.py) lets env.py connect.

    ``databases`` grows in the worker: a multidb project's and a Flask app's binds' scratch
    databases join the one the CLI created.
    """

    host: str
    port: int
    database: str
    databases: list[str]


@dataclass(frozen=True)
class StartFrom:
    """``--start-from``: the dump loaded into the scratch database before the upgrade."""

    file: str
    shown: str  # as the user named it, for messages
    psql: str


@dataclass
class WorkerRequest:
    """Everything the worker needs to run one check; the CLI builds it in run/check.py."""

    config: str
    name: str
    x_args: list[str]
    url: str
    sync_url: str
    database: str
    # In --database-url mode the CLI creates it, so it knows whether to drop it.
    create_database: bool
    # The checker's own server (no --database-url): nothing else runs on it.
    throwaway_server: bool
    cache: dict[str, Any] | None  # caches/migrated.py CachePlan.request(), for worker/caching.py
    revision: dict[str, Any] | None  # the revision command's options; None: only check
    heads_expected: int | list[str] | None
    history_added: list[str] | None  # the revisions a change adds; None: no round trips
    safety: str  # "error" | "warn" | "off": the safety observation of those (worker/safety/)
    admin_conninfo: dict[str, Any]
    connect_timeout: int
    server_label: str
    # The second opinion (worker/catalog/compare.py); off: exactly `alembic check`'s verdict.
    catalog: bool
    record_inputs: bool
    start_from: StartFrom | None
    flask_app: str | None
    # A line per revision where someone watches (a terminal, -v); else one per phase.
    progress_each: bool
    allowed: Allowed
    environ: dict[str, str | None]  # set on receipt (None: unset)


# --- the worker's events ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    TYPE: ClassVar[str] = "progress"
    message: str


@dataclass(frozen=True)
class CacheStoreEvent:
    """The migrated-database cache entry the CLI keeps after the run (caches/migrated.py)."""

    TYPE: ClassVar[str] = "cache_store"
    meta: dict[str, Any] | None


@dataclass(frozen=True)
class ErrorEvent:
    """The check could not be answered; ``kind`` picks the CLI's exception (worker/diagnose.py)."""

    TYPE: ClassVar[str] = "error"
    kind: str
    message: str
    detail: str


@dataclass(frozen=True)
class ResultEvent:
    """The worker's answer; the verdict cache (caches/verdict.py) keeps it for later runs."""

    TYPE: ClassVar[str] = "result"
    findings: list[Finding]
    revisions_applied: int
    heads: list[str]
    version_dirs: list[str]
    written: list[str]
    notices: list[str]  # the writer's: what it rewrote into its safe form, what it left out
    revision_ids: list[str]
    catalog_skipped: str
    warnings: list[Finding]  # the safety observation's advice (and its findings under "warn")
    safety: list[dict[str, Any]]  # every new revision's observed statements (worker/safety/)
    # What the verdict depends on (caches/verdict.py): None when it cannot vouch for it.
    inputs: dict[str, Any] | None
    inputs_refused: str
    closure: dict[str, Any] | None
    # The history did not reach head (a new revision's statement that cannot run in a
    # transaction, worker/safety/in_transaction.py): the failure, and no drift comparison ran.
    unchecked: str = ""


Event = ProgressEvent | CacheStoreEvent | ErrorEvent | ResultEvent
Emit = Callable[[Event], None]


# --- a several-config run's children (run/configs.py, run/config_child.py) --------------------


@dataclass(frozen=True)
class ConfigAnswer:
    TYPE: ClassVar[str] = "config_result"
    result: CheckResult


@dataclass(frozen=True)
class ConfigFailed:
    """A ``CheckError`` of the child, by class name (errors.py), to raise again in the parent."""

    TYPE: ClassVar[str] = "config_error"
    error_class: str
    message: str
    detail: str


_TAGGED: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (ProgressEvent, CacheStoreEvent, ErrorEvent, ResultEvent, ConfigAnswer, ConfigFailed)
}


# --- the one encoder and the one decoder -------------------------------------------------------


def to_wire(value: Any) -> Any:
    """The JSON-ready form of a message: dataclasses as objects (tagged ones with ``type``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        tag = getattr(type(value), "TYPE", None)
        if isinstance(tag, str):
            out["type"] = tag
        for f in dataclasses.fields(value):
            out[f.name] = to_wire(getattr(value, f.name))
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def encode(message: Any) -> str:
    """One message as one line of JSON (no newline inside: events are newline-delimited)."""
    return json.dumps(to_wire(message))


def decode(cls: type[T], data: str | bytes | Any) -> T:
    """``data`` (JSON text, or its parsed form) as a ``cls``, or a ``ProtocolError``."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
    value: T = _from_wire(cls, data, cls.__name__)
    return value


def decode_message(data: str | bytes | Any) -> Any:
    """A tagged message (an event, a config's answer) whatever its type; ``ProtocolError`` else."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
    tag = data.get("type") if isinstance(data, dict) else None
    cls = _TAGGED.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {tag!r}")
    return _from_wire(cls, data, cls.__name__)


def _from_wire(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        return _from_union(typing.get_args(tp), value, where)
    if tp is type(None):
        if value is not None:
            raise ProtocolError(f"{where}: expected null, got {type(value).__name__}")
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_object(tp, value, where)
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise ProtocolError(f"{where}: expected a list, got {type(value).__name__}")
        (item, *_) = typing.get_args(tp)
        items = [_from_wire(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected an object, got {type(value).__name__}")
        vt = typing.get_args(tp)[1]
        return {str(k): _from_wire(vt, v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ProtocolError(f"{where}: {value!r} is not a {tp.__name__}") from None
    return _scalar(tp, value, where)


def _from_union(arms: tuple[Any, ...], value: Any, where: str) -> Any:
    problems = []
    for arm in arms:
        try:
            return _from_wire(arm, value, where)
        except ProtocolError as exc:
            problems.append(str(exc))
    raise ProtocolError("; ".join(problems))


def _from_object(cls: type[Any], value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: expected an object, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    tag = getattr(cls, "TYPE", None)
    given = dict(value)
    if isinstance(tag, str) and given.pop("type", None) != tag:
        raise ProtocolError(f"{where}: not a {tag!r} message")
    unknown = sorted(set(given) - set(names))
    missing = [n for n in names if n not in given]
    if unknown or missing:
        raise ProtocolError(
            f"{where}: "
            + "; ".join(
                part
                for part in (
                    f"unknown key(s) {', '.join(unknown)}" if unknown else "",
                    f"missing key(s) {', '.join(missing)}" if missing else "",
                )
                if part
            )
        )
    return cls(**{n: _from_wire(hints[n], given[n], f"{where}.{n}") for n in names})


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float, bool) and isinstance(value, tp):
        if tp is int and isinstance(value, bool):
            raise ProtocolError(f"{where}: expected int, got bool")
        return value
    raise ProtocolError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
