"""pytest plugin: ``pytest --check-migrations`` adds one test item per Alembic config.

Registered through the ``pytest11`` entry point, so every pytest run in an environment that
has the package loads this module: it imports nothing beyond pytest and the standard library
until the option is given, and without it adds nothing. Settings come from
``[tool.check-migrations]`` of the rootdir's ``pyproject.toml`` (and ``CHECK_MIGRATIONS_*``),
as for the command: ``configs``, ``ignore``, ``baseline``; the check runs from the rootdir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from migration_check.settings import Settings

__all__ = ["CheckMigrationsItem"]

_OPTION = "--check-migrations"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("check-migrations")
    group.addoption(
        _OPTION,
        action="store_true",
        default=False,
        help="add one test per Alembic config (configs in [tool.check-migrations], else "
        "alembic.ini) that fails when the models changed without a matching revision",
    )


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _settings(root: Path) -> Settings:
    from migration_check.settings import load_settings

    with _cwd(root):
        return load_settings({})


# First, so that -k and -m deselect these items like any other.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption(_OPTION):
        return
    from migration_check.errors import CheckError

    root = config.rootpath
    try:
        configs = _settings(root).config_files
    except CheckError as exc:  # bad settings: one failing item that says so
        items.append(
            CheckMigrationsItem.from_parent(
                session, name="check-migrations", ini="", settings_error=exc.message
            )
        )
        return
    for ini in configs:
        items.append(
            CheckMigrationsItem.from_parent(session, name=f"check-migrations[{ini}]", ini=ini)
        )


class CheckMigrationsFailed(Exception):
    """The check's text report (findings) or its one-line error."""


class CheckMigrationsItem(pytest.Item):
    def __init__(self, *, ini: str, settings_error: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ini = ini
        self.settings_error = settings_error

    def runtest(self) -> None:
        import dataclasses

        from migration_check.errors import CheckError, Interrupted
        from migration_check.interrupts import cleanup_notes, hosted, interrupt_line
        from migration_check.report.formats import render_text
        from migration_check.run.configs import check_configs

        if self.settings_error is not None:
            raise CheckMigrationsFailed(f"check-migrations: error: {self.settings_error}")
        root = self.config.rootpath
        with _cwd(root):
            settings = dataclasses.replace(_settings(root), config=self.ini, configs=())
            try:
                # SIGTERM tears the check down here too; then it is pytest's again, whose
                # default action ends the session (SIGINT: pytest's own KeyboardInterrupt).
                with hosted():
                    run = check_configs(settings, lambda _message: None)
            except CheckError as exc:
                raise CheckMigrationsFailed(f"check-migrations: error: {exc.message}") from None
            except Interrupted as exc:  # a handler of the session's own took it and returned
                line = interrupt_line(exc.signum, cleanup_notes(exc))
                raise CheckMigrationsFailed(line) from None
        result = run.outcomes[0].result
        assert result is not None
        if result.findings:
            raise CheckMigrationsFailed(render_text(result).rstrip("\n"))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CheckMigrationsFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.config.rootpath / (self.ini or "pyproject.toml"), None, self.name
