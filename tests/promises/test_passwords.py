"""The password of ``--database-url`` is never shown: in any output format, error or -v.

Against the second server (helpers/second_server.py), whose passwords are distinctive enough that a
plain search of everything the user sees finds a leak.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from tests.helpers.checker import checker_env, run_checker
from tests.helpers.paths import SCENARIOS
from tests.helpers.second_server import OWNER_PASSWORD, PASSWORDS, SecondServer

# Every way the password could reach the user: the verdict, an env.py error quoting the URL,
# a revision error, the traceback under -v, and each output format.
LEAKS = {
    "in_sync": ("base", None, EXIT_OK),
    "drift": ("base", ("mapped_column(String(500))", "mapped_column(String(501))"), EXIT_FINDINGS),
    "env_py_quotes_url": (
        "base",
        (
            "target_metadata = metadata\n",
            "target_metadata = metadata\n"
            "raise RuntimeError('cannot use ' + os.environ['DATABASE_URL'] + ' password='"
            " + os.environ.get('PGPASSWORD', ''))\n",
        ),
        EXIT_ERROR,
    ),
    "env_py_prints_url": (
        "base",
        (
            "target_metadata = metadata\n",
            "target_metadata = metadata\n"
            "print('connecting to', os.environ['DATABASE_URL'])\n"
            "import sys\n"
            "print('PGPASSWORD is', os.environ.get('PGPASSWORD'), file=sys.stderr)\n",
        ),
        EXIT_OK,
    ),
    "failing_revision": ("bad_sql", None, EXIT_ERROR),
    "wrong_password": ("base", None, EXIT_ERROR),
}


@pytest.mark.parametrize(
    ("fmt", "verbose"),
    [("text", False), ("text", True), ("json", True), ("github", True)],
    ids=["text", "text-v", "json-v", "github-v"],
)
@pytest.mark.parametrize("case", sorted(LEAKS))
def test_password_never_shown(
    case: str,
    fmt: str,
    verbose: bool,
    real_server: SecondServer,
    tmp_path: Path,
    run_root: Path,
) -> None:
    name, edit, expected = LEAKS[case]
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / name, project)
    if edit is not None:
        target = project / ("env.py" if "metadata\n" in edit[0] else "models.py")
        text = target.read_text()
        assert edit[0] in text
        target.write_text(text.replace(edit[0], edit[1], 1))
    url = real_server.url("postgres")
    if case == "wrong_password":
        url = url.replace(OWNER_PASSWORD, "Pw-wrong-" + OWNER_PASSWORD[::-1])
    summary = tmp_path / "summary.md"
    args = ["--database-url", url, "--format", fmt, *(["-v"] if verbose else [])]
    result = run_checker(
        args, project, checker_env(run_root, extra={"GITHUB_STEP_SUMMARY": str(summary)})
    )
    assert result.returncode == expected, result.stderr
    shown = result.stdout + result.stderr + (summary.read_text() if summary.exists() else "")
    for secret in (*PASSWORDS, OWNER_PASSWORD[::-1]):
        assert secret not in shown
    if verbose and expected == EXIT_ERROR and case != "wrong_password":
        assert "Traceback" in result.stderr  # the detail was shown, and masked
    if verbose and case == "env_py_prints_url":
        # env.py's own output is shown under -v, masked.
        assert "connecting to postgresql+psycopg://app_owner:***@127.0.0.1" in result.stderr
        assert "PGPASSWORD is ***" in result.stderr
