"""The verdict cache: an unchanged check is answered from the store, a changed one never is.

Every test runs real checks through ``main([...])`` against the bundled PostgreSQL, with its own
cache directory. Each input kind gets a test that changes it after a stored verdict and proves
the next check misses and agrees with ``--no-cache``; one test walks a scenario through several
edits and compares the cached and uncached verdicts at every step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migration_check.caches.verdict import prune
from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import NEW_REVISION, edit
from tests.helpers.git import git
from tests.helpers.scenarios import ScenarioFactory

HIT = "(cached verdict"
MISS = "not reusing the previous verdict"

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(path))
    return path


def _verdicts(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "verdicts").glob("verdict-*.json"))


def _check(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _stored_then(capsys: Capsys, *args: str) -> tuple[int, str]:
    """Run once (stores a verdict), then again: the second must be served from the cache."""
    rc, out, err = _check(capsys, *args)
    assert HIT not in err
    rc2, out2, err2 = _check(capsys, *args)
    assert HIT in err2, err2
    assert (rc2, out2) == (rc, out)
    return rc, out


def _misses_and_agrees(capsys: Capsys, *args: str) -> int:
    """The next check must run for real, and say what --no-cache says."""
    rc, out, err = _check(capsys, *args)
    assert HIT not in err, err
    rc_nc, out_nc, _ = _check(capsys, *args, "--no-cache")
    assert (rc, out) == (rc_nc, out_nc)
    return rc


def test_unchanged_inputs_serve_the_same_output_and_exit_code(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    project = scenario("base")
    assert _stored_then(capsys)[0] == EXIT_OK
    assert len(_verdicts(cache_dir)) == 1
    # A drifting project is stored and served as such too: exit 1 and the same findings.
    edit(project / "models.py", "    body: Mapped[str] = mapped_column(String(500))\n",
         "    body: Mapped[str] = mapped_column(String(500))\n"
         "    pinned: Mapped[bool | None]\n")  # fmt: skip
    rc, out = _stored_then(capsys, "--format", "json")
    assert rc == EXIT_FINDINGS
    assert '"pinned"' in out


def test_no_cache_neither_reads_nor_writes_verdicts(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    scenario("base")
    rc, _, err = _check(capsys, "--no-cache")
    assert rc == EXIT_OK
    assert _verdicts(cache_dir) == []
    _stored_then(capsys)
    rc, _, err = _check(capsys, "--no-cache")
    assert HIT not in err


def test_verdict_cache_setting_turns_it_off(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario("base")
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    _check(capsys)
    _, _, err = _check(capsys)
    assert HIT not in err
    assert _verdicts(cache_dir) == []


def test_errors_are_never_stored(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    scenario("bad_sql")
    rc, _, _ = _check(capsys)
    assert rc == EXIT_ERROR
    rc, _, err = _check(capsys)
    assert rc == EXIT_ERROR
    assert HIT not in err
    assert _verdicts(cache_dir) == []


# Each edit changes one kind of input after a verdict was stored. The scenario ("base", plus the
# files written by ``_prepare``) agrees before every edit; most edits make it drift, so a stale
# verdict would be a false "agree".
HELPERS = "NAME_LENGTH = 100\n"
INNER = "BODY_LENGTH = 500\n"
LENGTHS = '{"email": 200}\n'
FAKELIB = "STATUS_LENGTH = 20\n"


def _prepare(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the base scenario every input kind: helpers, a package, a data file, a library."""
    (project / "helpers.py").write_text(HELPERS)
    (project / "hpkg").mkdir()
    (project / "hpkg" / "__init__.py").write_text("")
    (project / "hpkg" / "inner.py").write_text(INNER)
    (project / "hpkg" / "outer.py").write_text("from hpkg.inner import BODY_LENGTH\n")
    (project / "lengths.json").write_text(LENGTHS)
    libs = project.parent / "libs"
    (libs / "fakelib").mkdir(parents=True)
    (libs / "fakelib" / "__init__.py").write_text(FAKELIB)
    (libs / "fakelib-1.0.dist-info").mkdir()
    (libs / "fakelib-1.0.dist-info" / "METADATA").write_text("Name: fakelib\nVersion: 1.0\n")
    monkeypatch.setenv("PYTHONPATH", str(libs))
    models = project / "models.py"
    edit(models, "from sqlalchemy import", "import json\nimport os\n\nimport fakelib\n"
         "from helpers import NAME_LENGTH\nfrom hpkg.outer import BODY_LENGTH\n"
         "from sqlalchemy import")  # fmt: skip
    edit(models, "metadata = MetaData(",
         'LENGTHS = json.load(open("lengths.json"))\n'
         'STATUS_DEFAULT = os.environ.get("STATUS_DEFAULT", "active")\n\n'
         "metadata = MetaData(")  # fmt: skip
    edit(models, "String(200)", 'String(LENGTHS["email"])')
    edit(models, "String(100)", "String(NAME_LENGTH)")
    edit(models, "String(500)", "String(BODY_LENGTH)")
    edit(models, "String(20), server_default=text(\"'active'\")",
         "String(fakelib.STATUS_LENGTH), "
         "server_default=text(f\"'{STATUS_DEFAULT}'\")")  # fmt: skip
    env_py = project / "env.py"
    # As this repository's env.py does: variables from a .env file python-dotenv finds.
    env_py.write_text("from dotenv import load_dotenv\n\nload_dotenv()\n" + env_py.read_text())
    edit(env_py, "target_metadata = metadata\n", "target_metadata = metadata\n"
         "SKIP = set(context.get_x_argument(as_dictionary=True).get('skip', '').split(','))\n"
         "SKIP |= set(config.get_main_option('skip_tables', '').split(','))\n\n\n"
         "def include_object(obj, name, type_, reflected, compare_to):\n"
         "    table = name if type_ == 'table' else getattr(getattr(obj, 'table', None), "
         "'name', None)\n"
         "    return table not in SKIP\n")  # fmt: skip
    text = env_py.read_text().replace(
        "compare_server_default=True)",
        "compare_server_default=True, include_object=include_object)",
    )
    env_py.write_text(text)


def _library_upgrade(project: Path) -> None:
    libs = project.parent / "libs"
    (libs / "fakelib-1.0.dist-info").rename(libs / "fakelib-1.1.dist-info")
    (libs / "fakelib" / "__init__.py").write_text("STATUS_LENGTH = 40\n")


def _shadow(project: Path) -> None:
    """A package beside helpers.py: the import system now finds it first."""
    (project / "helpers").mkdir()
    (project / "helpers" / "__init__.py").write_text("NAME_LENGTH = 98\n")


def _drift_in_notes(project: Path) -> None:
    edit(project / "models.py", "    body: Mapped[str] = mapped_column(String(BODY_LENGTH))\n",
         "    body: Mapped[str] = mapped_column(String(BODY_LENGTH))\n"
         "    pinned: Mapped[bool | None]\n")  # fmt: skip


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
    _prepare(project, monkeypatch)
    change, expected = EDITS[kind]
    if kind == "a .env file edited":
        (project / ".env").write_text("STATUS_DEFAULT=active\n")
    if expected == EXIT_OK:
        _drift_in_notes(project)  # the edit is a filter that hides this drift, or stops hiding it
        if kind == "env.py":
            args: tuple[str, ...] = ("-x", "skip=notes")
        else:
            edit(project / "alembic.ini", "prepend_sys_path = .", "prepend_sys_path = .\n"
                 "skip_tables = users")  # fmt: skip
            args = ()
        assert _stored_then(capsys, *args)[0] == (EXIT_OK if kind == "env.py" else EXIT_FINDINGS)
        expected_now = EXIT_FINDINGS
        if kind == "alembic.ini":
            change = lambda p: edit(p / "alembic.ini", "skip_tables = users", "skip_tables = notes")  # noqa: E731
            expected_now = EXIT_OK
    else:
        args = ()
        assert _stored_then(capsys)[0] == EXIT_OK
        expected_now = expected
    change(project)
    assert _misses_and_agrees(capsys, *args) == expected_now


def test_x_arguments_environment_and_settings_miss(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    _prepare(project, monkeypatch)
    _drift_in_notes(project)
    assert _stored_then(capsys, "-x", "skip=notes")[0] == EXIT_OK
    # -x: other arguments, other verdict.
    assert _misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS
    # Each set of arguments keeps its own verdict.
    rc, _, err = _check(capsys, "-x", "skip=notes")
    assert (rc, HIT in err) == (EXIT_OK, True)
    # An environment variable the models read.
    monkeypatch.setenv("STATUS_DEFAULT", "pending")
    assert _misses_and_agrees(capsys, "-x", "skip=notes") == EXIT_FINDINGS
    monkeypatch.delenv("STATUS_DEFAULT")
    # pyproject settings: [tool.check-migrations] naming another ini (one revision short).
    rc, _, err = _check(capsys, "-x", "skip=users")  # stored above
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
    assert _misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS
    # Any edit of pyproject.toml misses, even a setting that cannot change the verdict: Alembic
    # reads the same file ([tool.alembic], the 1.16+ layouts), so it is one of the worker's inputs.
    (project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nconfig = "short.ini"\ntimeout = 300\n'
    )
    assert _misses_and_agrees(capsys, "-x", "skip=users") == EXIT_FINDINGS


@pytest.mark.usefixtures("git_identity")
def test_untracked_revision_check_runs_on_a_cached_verdict(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    project = scenario("base")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    assert _stored_then(capsys)[0] == EXIT_OK
    # A new revision file alone, never git-added: the version directory's listing changed.
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = _check(capsys)
    assert HIT not in err
    assert rc == EXIT_FINDINGS
    assert "untracked" in out
    assert "remove_column" in out
    # Its model change follows.
    email = "    email: Mapped[str] = mapped_column(String(200), unique=True)\n"
    edit(project / "models.py", email,
         email + "    phone: Mapped[str | None] = mapped_column(String(30))\n")  # fmt: skip
    rc, out, err = _check(capsys)
    assert HIT not in err
    assert rc == EXIT_FINDINGS
    assert "remove_column" not in out
    # Same files, now staged: the stored worker verdict is reused, the git check is not.
    git(project, "add", "-A")
    rc, out, err = _check(capsys)
    assert HIT in err
    assert rc == EXIT_OK, out
    git(project, "rm", "-q", "--cached", "versions/0003_phone.py")
    rc, out, err = _check(capsys)
    assert HIT in err
    assert rc == EXIT_FINDINGS
    assert "git add versions/0003_phone.py" in out


def test_file_edited_while_the_worker_reads_it_is_not_stored(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    _prepare(project, monkeypatch)
    # env.py edits a module after importing it: what ran is not what is on disk afterwards.
    edit(project / "env.py", "target_metadata = metadata\n", "target_metadata = metadata\n"
         "import helpers\n"
         "with open(helpers.__file__, 'a') as fh:\n"
         "    fh.write('# edited during the run\\n')\n")  # fmt: skip
    rc, _, _ = _check(capsys)
    assert rc == EXIT_OK
    assert _verdicts(cache_dir) == []


def test_cached_and_uncached_verdicts_agree_over_a_series_of_edits(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    _prepare(project, monkeypatch)
    steps: list[Callable[[Path], object]] = [
        lambda p: None,
        _drift_in_notes,
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
        rc, out, err = _check(capsys)
        hits += HIT in err
        assert (rc, out) == _check(capsys, "--no-cache")[:2], err
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
    assert _stored_then(capsys)[0] == EXIT_OK
    (site_dir / "sitecustomize.py").write_text("BODY_LENGTH = 400\n")
    assert _misses_and_agrees(capsys) == EXIT_FINDINGS


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    for i in range(5):
        path = tmp_path / f"verdict-{i}.json"
        path.write_text("{}")
        os.utime(path, (1000 + i, 1000 + i))
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["verdict-0.json", "verdict-1.json", "verdict-2.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verdict-3.json", "verdict-4.json"]


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


def test_entries_are_private_and_hold_no_variable_values(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    _prepare(project, monkeypatch)
    monkeypatch.setenv("STATUS_DEFAULT", "s3cret-token-value")
    edit(project / "versions" / "0001_initial.py", "'active'", "'s3cret-token-value'")
    assert _stored_then(capsys)[0] == EXIT_OK
    [entry] = _verdicts(cache_dir)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert "s3cret-token-value" not in entry.read_text()


def test_a_damaged_entry_is_a_miss_not_a_crash(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    import json

    scenario("base")
    _stored_then(capsys)
    [entry] = _verdicts(cache_dir)
    data = json.loads(entry.read_text())
    for damage in ({**data, "inputs": {}}, {**data, "event": {"type": "result"}}, [1], "x"):
        entry.write_text(json.dumps(damage))
        rc, _, err = _check(capsys)
        assert rc == EXIT_OK
        assert HIT not in err
    entry.write_text("{not json")
    rc, _, err = _check(capsys)
    assert (rc, HIT in err) == (EXIT_OK, False)
