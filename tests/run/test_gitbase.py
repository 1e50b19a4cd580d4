"""find_base against real repositories: the base branch, its label, what a change adds and edits.

git is asked few questions at once (one ``cat-file --batch-check`` for every candidate ref, one
``diff --name-status`` for additions and edits); these tests hold the answers to what asking one
question per process gave.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.errors import ConfigError
from migration_check.run.gitbase import find_base
from tests.helpers.git import git


def _commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with two files; a feature branch adding one, editing the other; one untracked."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "old.py").write_text("x = 1\n")
    (repo / "kept.py").write_text("y = 1\n")
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "new.py").write_text("z = 1\n")
    (repo / "old.py").write_text("x = 2\n")
    (repo / "notes.txt").write_text("not python\n")
    _commit(repo, "feature")
    (repo / "untracked.py").write_text("u = 1\n")
    return repo


def test_a_branch_is_measured_from_its_merge_base_with_main(repo: Path) -> None:
    base, why = find_base(repo, None, hook=False)
    assert why == ""
    assert base is not None
    assert base.label == "main"
    assert base.tip == git(repo, "rev-parse", "main")
    assert base.modified_from == base.tip
    assert base.added == (str(repo / "new.py"), str(repo / "untracked.py"))
    assert base.modified == (str(repo / "old.py"),)


def test_a_clone_prefers_origin_head_and_follows_where_it_points(
    repo: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git(repo, "checkout", "-q", "main")  # the remote's HEAD: what origin/HEAD names
    git(tmp_path, "clone", "-q", "-b", "feature", str(repo), str(clone))
    base, _ = find_base(clone, None, hook=False)
    assert base is not None
    assert base.label == "origin/main"
    # A default branch that is none of the usual names is still the one origin/HEAD names.
    git(repo, "branch", "develop", "feature")
    git(clone, "fetch", "-q")
    git(clone, "remote", "set-head", "origin", "develop")
    base, _ = find_base(clone, None, hook=False)
    assert base is not None
    assert (base.label, base.tip) == ("origin/develop", git(clone, "rev-parse", "feature"))


def test_a_hook_adds_what_the_commit_adds_and_edits_from_main(repo: Path) -> None:
    (repo / "staged.py").write_text("s = 1\n")
    git(repo, "add", "staged.py")
    base, _ = find_base(repo, None, hook=True)
    assert base is not None
    assert base.label == "main"
    assert base.added == (str(repo / "staged.py"), str(repo / "untracked.py"))
    assert base.modified_from == git(repo, "rev-parse", "main")
    assert base.modified == (str(repo / "old.py"),)


def test_base_ref_wins_and_a_wrong_one_is_named(repo: Path) -> None:
    base, _ = find_base(repo, "HEAD~1", hook=False)
    assert base is not None
    assert (base.label, base.tip) == ("HEAD~1", git(repo, "rev-parse", "main"))
    with pytest.raises(ConfigError, match="--base-ref nosuch: not a commit"):
        find_base(repo, "nosuch", hook=False)


def test_no_base_branch_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "solo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    (repo / "a.py").write_text("a = 1\n")
    _commit(repo, "one")
    base, why = find_base(repo, None, hook=False)
    assert base is None
    assert "no base branch" in why
