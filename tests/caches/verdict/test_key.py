"""The verdict's key holds every setting, unless the setting only shapes the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _other_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, tuple):
        return (*value, "k=v")
    if isinstance(value, str) or value is None:
        return f"{value}-other"
    if isinstance(value, dict):
        return {**value, "other": "flag"}
    raise AssertionError(f"no other value for {value!r}: teach this test the type")


# The settings that may stay out of the verdict's key, written out here rather than read from
# the code under test: a setting moved out of the key there must be argued for here too.
OUTSIDE_THE_KEY = frozenset(
    {
        "format",
        "verbose",
        "timeout",
        "lock_timeout",
        "connect_timeout",
        "source",
        "use_cache",
        "verdict_cache",
        "server_user",
        "keep_warm",
    }
)


def test_every_setting_is_in_the_key_unless_it_only_shapes_output(tmp_path: Path) -> None:
    """A setting added later (say, one that turns a comparison off) is in the key by default."""
    import dataclasses

    from migration_check.caches.verdict import static_key
    from migration_check.settings import Settings

    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\n")
    base = Settings()

    def key(settings: Settings) -> str:
        return static_key(
            settings, ini, drivername="postgresql+psycopg", pg_fingerprint="pg", worker_environ={}
        )

    names = {f.name for f in dataclasses.fields(Settings)}
    assert names >= OUTSIDE_THE_KEY  # each name here is a real setting
    for name in sorted(names):
        changed = dataclasses.replace(base, **{name: _other_value(getattr(base, name))})
        if name in OUTSIDE_THE_KEY:
            assert key(changed) == key(base), f"{name} is in the key"
        else:
            assert key(changed) != key(base), f"{name} is not in the key"
    other_driver = static_key(
        base, ini, drivername="postgresql+asyncpg", pg_fingerprint="pg", worker_environ={}
    )
    other_build = static_key(
        base, ini, drivername="postgresql+psycopg", pg_fingerprint="p2", worker_environ={}
    )
    assert key(base) != other_driver
    assert key(base) != other_build
