"""The verdict cache: a changed check is never answered from the store.

Each input kind gets a test that changes it after a stored verdict and proves the next check
misses and agrees with ``--no-cache``; one test walks a scenario through several edits and
compares the cached and uncached verdicts at every step. Real checks through ``main([...])``
against the bundled PostgreSQL, each with its own cache directory (conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.caches import (
    HELPERS,
    HIT,
    Capsys,
    drift_in_notes,
    misses_and_agrees,
    prepare_every_input_kind,
    stored_then,
    verdict_files,
)
from tests.helpers.edits import NEW_REVISION, edit
from tests.helpers.git import git
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory


def _library_upgrade(project: Path) -> None:
    libs = project.parent / "libs"
    (libs / "fakelib-1.0.dist-info").rename(libs / "fakelib-1.1.dist-info")
    (libs / "fakelib" / "__init__.py").write_text("STATUS_LENGTH = 40\n")


def _shadow(project: Path) -> None:
    """A package beside helpers.py: the import system now finds it first."""
    (project / "helpers").mkdir()
    (project / "helpers" / "__init__.py").write_text("NAME_LENGTH = 98\n")


EDITS: dict[str, tuple[Callable[[Path], object], int]] = {
    "model file": (lambda p: edit(p / "models.py", "String(NAME_LENGTH)", "String(101)"), 1),
    "module the models import": (lambda p: (p / "helpers.py").write_text("NAME_LENGTH = 99\n"), 1),
    "module imported through another": (
        lambda p: (p / "hpkg" / "inner.py").write_text("BODY_LENGTH = 501\n"),
        1,
    ),
    "data file the models read": (lambda p: (p / "lengths.json").write_text('{"email": 250}'), 1),
    "env.py": (lambda p: edit(p / "env.py", "return table not in SKIP", "return True"), 0),
    "revision": (lambda p: edit(p / "versions" / "0002_notes.py", "String(500)", "String(50)"), 1),
    "alembic.ini": (
        lambda p: edit(
            p / "alembic.ini", "prepend_sys_path = .", "prepend_sys_path = .\nskip_tables = users"
        ),
        0,
    ),
    "library version": (_library_upgrade, 1),
    "a .env file appearing": (lambda p: (p / ".env").write_text("STATUS_DEFAULT=pending\n"), 1),
    "a .env file edited": (lambda p: (p / ".env").write_text("STATUS_DEFAULT=pending\n"), 1),
    "new module shadowing an import": (_shadow, 1),
}


@pytest.mark.parametrize("kind", list(EDITS))
def test_each_input_kind_misses_the_cache(
    kind: str,
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = scenario("base")
    prepare_every_input_kind(project, monkeypatch)
    change, expected = EDITS[kind]
    if kind == "a .env file edited":
        (project / ".env").write_text("STATUS_DEFAULT=active\n")
    if expected == EXIT_OK:
        drift_in_notes(project)  # the edit is a filter that hides this drift, or stops hiding it
        if kind == "env.py":
            args: tuple[str, ...] = ("-x", "skip=notes")
        else:
            edit(project / "alembic.ini", "prepend_sys_path = .", "prepend_sys_path = .\n"
                 "skip_tables = users")  # fmt: skip
            args = ()
        assert stored_then(capsys, *args)[0] == (EXIT_OK if kind == "env.py" else EXIT_FINDINGS)
        expected_now = EXIT_FINDINGS
        if kind == "alembic.ini":
            change = lambda p: edit(p / "alembic.ini", "skip_tables = users", "skip_tables = notes")  # noqa: E731
            expected_now = EXIT_OK
    else:
        args = ()
        assert stored_then(capsys)[0] == EXIT_OK
        expected_now = expected
    change(project)
    assert misses_and_agrees(capsys, *args) == expected_now


def test_x_arguments_environment_and_settings_miss(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    prepare_every_input_kind(project, monkeypatch)
    drift_in_notes(project)
    assert stored_then(capsys, "-x", "skip=notes")[0] == EXIT_OK
    # -x: other arguments, other verdict.
    assert misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS
    # Each set of arguments keeps its own verdict.
    rc, _, err = run_main(capsys, "-x", "skip=notes")
    assert (rc, HIT in err) == (EXIT_OK, True)
    # An environment variable the models read.
    monkeypatch.setenv("STATUS_DEFAULT", "pending")
    assert misses_and_agrees(capsys, "-x", "skip=notes") == EXIT_FINDINGS
    monkeypatch.delenv("STATUS_DEFAULT")
    # pyproject settings: [tool.check-migrations] naming another ini (one revision short).
    rc, _, err = run_main(capsys, "-x", "skip=users")  # stored above
    assert (rc, HIT in err) == (EXIT_FINDINGS, True)
    ini = (project / "alembic.ini").read_text()
    (project / "short").mkdir()
    (project / "short" / "0001_initial.py").write_text(
        (project / "versions" / "0001_initial.py").read_text()
    )
    (project / "short.ini").write_text(
        ini.replace("version_locations = %(here)s/versions", "version_locations = %(here)s/short")
    )
    (project / "pyproject.toml").write_text('[tool.check-migrations]\nconfig = "short.ini"\n')
    assert misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS
    # Any edit of pyproject.toml misses, even a setting that cannot change the verdict: Alembic
    # reads the same file ([tool.alembic], the 1.16+ layouts), so it is one of the worker's inputs.
    (project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nconfig = "short.ini"\ntimeout = 300\n'
    )
    assert misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS


@pytest.mark.usefixtures("git_identity")
def test_untracked_revision_check_runs_on_a_cached_verdict(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    project = scenario("base")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    assert stored_then(capsys)[0] == EXIT_OK
    # A new revision file alone, never git-added: the version directory's listing changed.
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = run_main(capsys)
    assert HIT not in err
    assert rc == EXIT_FINDINGS
    assert "untracked" in out
    assert "remove_column" in out
    # Its model change follows.
    email = "    email: Mapped[str] = mapped_column(String(200), unique=True)\n"
    edit(project / "models.py", email,
         email + "    phone: Mapped[str | None] = mapped_column(String(30))\n")  # fmt: skip
    rc, out, err = run_main(capsys)
    assert HIT not in err
    assert rc == EXIT_FINDINGS
    assert "remove_column" not in out
    # Same files, now staged: the stored worker verdict is reused, the git check is not.
    git(project, "add", "-A")
    rc, out, err = run_main(capsys)
    assert HIT in err
    assert rc == EXIT_OK, out
    git(project, "rm", "-q", "--cached", "versions/0003_phone.py")
    rc, out, err = run_main(capsys)
    assert HIT in err
    assert rc == EXIT_FINDINGS
    assert "git add versions/0003_phone.py" in out


def test_file_edited_while_the_worker_reads_it_is_not_stored(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    prepare_every_input_kind(project, monkeypatch)
    # env.py edits a module after importing it: what ran is not what is on disk afterwards.
    edit(project / "env.py", "target_metadata = metadata\n", "target_metadata = metadata\n"
         "import helpers\n"
         "with open(helpers.__file__, 'a') as fh:\n"
         "    fh.write('# edited during the run\\n')\n")  # fmt: skip
    rc, _, _ = run_main(capsys)
    assert rc == EXIT_OK
    assert verdict_files(cache_dir) == []


def test_cached_and_uncached_verdicts_agree_over_a_series_of_edits(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    prepare_every_input_kind(project, monkeypatch)
    steps: list[Callable[[Path], object]] = [
        lambda p: None,
        drift_in_notes,
        lambda p: None,
        lambda p: edit(p / "models.py", "    pinned: Mapped[bool | None]\n", ""),
        lambda p: (p / "helpers.py").write_text("NAME_LENGTH = 120\n"),
        lambda p: (p / "helpers.py").write_text(HELPERS),
        lambda p: (p / "versions" / "0003_phone.py").write_text(NEW_REVISION),
        lambda p: edit(
            p / "models.py",
            "    email: Mapped[str] = mapped_column(",
            "    phone: Mapped[str | None] = mapped_column(String(30))\n"
            "    email: Mapped[str] = mapped_column(",
        ),
        lambda p: None,
    ]
    hits = 0
    for step in steps:
        step(project)
        rc, out, err = run_main(capsys)
        hits += HIT in err
        assert (rc, out) == run_main(capsys, "--no-cache")[:2], err
    assert hits >= 2


def test_a_module_loaded_before_the_worker_watched_is_in_the_key(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sitecustomize runs at interpreter start-up, before the worker installs its hook."""
    project = scenario("base")
    site_dir = project.parent / "site"
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text("BODY_LENGTH = 500\n")
    monkeypatch.setenv("PYTHONPATH", str(site_dir))
    edit(
        project / "models.py",
        "from sqlalchemy import",
        "import sitecustomize\nfrom sqlalchemy import",
    )
    edit(project / "models.py", "String(500)", "String(sitecustomize.BODY_LENGTH)")
    assert stored_then(capsys)[0] == EXIT_OK
    (site_dir / "sitecustomize.py").write_text("BODY_LENGTH = 400\n")
    assert misses_and_agrees(capsys) == EXIT_FINDINGS
