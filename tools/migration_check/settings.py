"""Settings: ``[tool.check-migrations]`` in pyproject.toml, then ``CHECK_MIGRATIONS_*``, then flags.

The later source wins, so a team sets defaults in pyproject.toml and CI or a developer
overrides one value without editing files.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from migration_check.errors import ConfigError

__all__ = ["FormatType", "Settings", "env_number", "load_settings", "parse_duration"]

_N = TypeVar("_N", int, float)


def env_number(name: str, default: _N, *, minimum: _N) -> _N:
    """A tuning variable (``CHECK_MIGRATIONS_CACHE_ENTRIES``, ...): unset or malformed, the default.

    These bound caches and sweeps, not what a check finds: a typo must not fail the check.
    """
    raw = os.environ.get(name, "")
    try:
        return max(minimum, type(default)(raw)) if raw else default
    except ValueError:
        return default


class FormatType(StrEnum):
    text = "text"
    json = "json"
    github = "github"


@dataclass(frozen=True)
class Settings:
    config: str = "alembic.ini"
    name: str = "alembic"
    x_args: tuple[str, ...] = ()
    database_url: str | None = None
    postgres_bin: str | None = None
    server_user: str | None = None
    format: FormatType = FormatType.text
    verbose: bool = False
    use_cache: bool = True
    # The verdict cache alone (caches/verdict.py); use_cache = False turns every cache off.
    verdict_cache: bool = True
    timeout: float = 600.0
    lock_timeout: float = 60.0
    # 5 s: an unreachable --database-url must fail within 10 s, interpreter start-up included.
    connect_timeout: float = 5.0
    # History checks: the branch new revisions are measured from (None: the default branch),
    # and the heads the history should have (a count, or one head per branch label).
    base_ref: str | None = None
    heads: int | tuple[str, ...] | None = None
    # Skip the catalog comparison: the verdict is then exactly `alembic check`'s.
    autogenerate_only: bool = False
    # A pg_dump --schema-only file loaded before the upgrade, for histories that do not build
    # from an empty database.
    start_from: str | None = None
    # "module:create_app": run env.py inside this Flask app's context (Flask-Migrate).
    flask_app: str | None = None
    # Adoption on existing projects: ignore rules (run/ignores.py), the baseline file
    # (run/baseline.py; None: check-migrations.baseline.json when it exists), several configs.
    ignore: tuple[str, ...] = ()
    baseline: str | None = None
    configs: tuple[str, ...] = ()
    # Seconds a resident worker (run/resident_client.py) stays after its last check; 0: none is used
    # or started.
    keep_warm: float = 0.0
    # The safety observation of new revisions (worker/safety/): "error" fails the check on a
    # hazard to an existing table (advice is a warning), "warn" reports only, "off" skips it.
    safety: str = "error"
    source: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def config_files(self) -> tuple[str, ...]:
        """Every Alembic config this run checks: ``configs`` when set, else ``config``."""
        return self.configs or (self.config,)


_TYPES: dict[str, Any] = {  # a type, or "duration"
    "config": str,
    "name": str,
    "database_url": str,
    "postgres_bin": str,
    "server_user": str,
    "format": FormatType,
    "verbose": bool,
    "use_cache": bool,
    "verdict_cache": bool,
    "timeout": float,
    "lock_timeout": float,
    "connect_timeout": float,
    "base_ref": str,
    "heads": tuple,
    "autogenerate_only": bool,
    "start_from": str,
    "flask_app": str,
    "ignore": tuple,
    "baseline": str,
    "configs": tuple,
    "keep_warm": "duration",
    "safety": "safety",
}
_SAFETY = ("error", "warn", "off")
# Keys as a user writes them in pyproject.toml (dashes) and in the environment.
_ALIASES = {"no_cache": "use_cache"}


def _coerce(key: str, value: Any, origin: str) -> Any:
    kind = _TYPES[key]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind == "duration":
            return parse_duration(value)
        if kind == "safety":
            if str(value).strip().lower() not in _SAFETY:
                raise ValueError(value)
            return str(value).strip().lower()
        if kind is float:
            number = float(value)
            if number <= 0:
                raise ValueError(value)
            return number
        if kind is FormatType:
            return FormatType(str(value))
        if kind is tuple:
            return _heads(value) if key == "heads" else _string_list(value)
        return str(value)
    except ValueError:
        raise ConfigError(
            f"{origin}: invalid value {value!r} for {key.replace('_', '-')}"
            + (f" (one of {', '.join(f.value for f in FormatType)})" if kind is FormatType else "")
            + (
                (
                    " (a number of heads, or a list of branch labels)"
                    if key == "heads"
                    else " (a list of strings)"
                )
                if kind is tuple
                else ""
            )
            + (' (a duration such as "10m", "90s", "1h", or "off")' if kind == "duration" else "")
            + (f" (one of {', '.join(_SAFETY)})" if kind == "safety" else "")
        ) from None


def parse_duration(value: Any) -> float:
    """``keep_warm``: "10m", "90s", "1h", a number of seconds, or off/0 (0.0); else ValueError."""
    if isinstance(value, bool):
        return 0.0 if value is False else _bad(value)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(value)
        return float(value)
    text = str(value).strip().lower()
    if text in ("off", "no", "false", "none", "0", ""):
        return 0.0
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], units[text[-1]]) if text[-1] in units else (text, 1.0)
    seconds = float(number) * unit
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(value)
    return seconds


def _bad(value: Any) -> float:
    raise ValueError(value)


def _heads(value: Any) -> int | tuple[str, ...]:
    """``heads``: a count (``2``) or branch labels (``["expand", "contract"]``, ``"a,b"``)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        count = int(value)
        if count < 1:
            raise ValueError(value)
        return count
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(value)
    labels = tuple(str(i).strip() for i in items if isinstance(i, str) and i.strip())
    if not labels or len(labels) != len(items) or len(set(labels)) != len(labels):
        raise ValueError(value)
    return labels


def _string_list(value: Any) -> tuple[str, ...]:
    """A TOML array of strings, or (environment) one comma-separated string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(value)


def _normalise(raw: dict[str, Any], origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, given in raw.items():
        k = key.replace("-", "_")
        value = given
        if k in _ALIASES:
            k = _ALIASES[k]
            value = not _coerce(k, given, origin)
        if k not in _TYPES:
            raise ConfigError(
                f"{origin}: unknown setting {key!r}; known: "
                + ", ".join(sorted(n.replace("_", "-") for n in _TYPES))
            )
        out[k] = _coerce(k, value, origin)
    return out


def _from_pyproject(start: Path) -> tuple[dict[str, Any], str]:
    path = start / "pyproject.toml"
    if not path.is_file():
        return {}, ""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    section = data.get("tool", {}).get("check-migrations", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.check-migrations] must be a table")
    origin = f"{path} [tool.check-migrations]"
    return _normalise(section, origin), origin


def _from_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key in [*_TYPES, *_ALIASES]:
        name = "CHECK_MIGRATIONS_" + key.upper()
        if name in environ:
            raw[key] = environ[name]
    return _normalise(raw, "environment (CHECK_MIGRATIONS_*)") if raw else {}


def _in_ci(environ: Any) -> bool:
    return str(environ.get("CI", "")).strip().lower() not in ("", "0", "false", "no")


def load_settings(
    flags: dict[str, Any], *, cwd: Path | None = None, environ: Any = None
) -> Settings:
    """Merge the three sources; ``flags`` holds only what was given on the command line."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    py, origin = _from_pyproject(cwd or Path.cwd())
    given = {k: v for k, v in flags.items() if v is not None}
    for layer, name in ((py, origin), (_from_env(environ), "environment"), (given, "command line")):
        if "config" in layer and "configs" not in layer:
            # One config named by a later source replaces an earlier list of them.
            values.pop("configs", None)
        for k, v in layer.items():
            values[k], source[k] = v, name
    if values.get("keep_warm") and source.get("keep_warm") != "command line" and _in_ci(environ):
        # A resident process outliving a CI job is never wanted by accident: in CI only the
        # explicit --keep-warm flag starts one, not a setting shared with developers' machines.
        values.pop("keep_warm")
        source.pop("keep_warm")
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known}, source=source)
