"""History checks: labelled heads, two heads on one label, the ``heads`` setting.

Each story runs in a git repository made here (helpers/history.py).
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_all
from tests.helpers.history import REVISION
from tests.helpers.scenarios import ScenarioFactory

# An outer hook's git must not reach the stories' repositories (conftest.py).
pytestmark = pytest.mark.usefixtures("git_identity")


def test_labelled_branches_are_checked_together(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """No git here: the history checks are skipped, said once on stderr; the rest is checked."""
    scenario("branches")
    assert main([]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "3 revision(s) applied, heads 0002, 0003" in out
    assert err.count("history checks skipped: not a git repository") == 1


def test_unlabeled_heads_are_a_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    for name in ("0002_notes.py", "0003_name_index.py"):
        path = project / "versions" / name
        edit_all(path, path.read_text().split("branch_labels = ")[1].split("\n")[0], "None")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "the history has 2 heads without branch labels: 0002, 0003 [multiple_heads]" in out


def test_two_heads_on_one_label_are_a_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two developers each added a revision on expand: Alembic cannot pick expand@head."""
    project = scenario("branches")
    for rev in ("0004", "0005"):
        (project / "versions" / f"{rev}_expand.py").write_text(
            REVISION.format(message=rev, rev=rev, down="0002", downgrade="pass").replace(
                'op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))',
                "pass",
            )
        )
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    heads = "0003 (contract), 0004 (expand), 0005 (expand)"
    assert f"branch expand has more than one head: {heads}" in out


def test_writer_on_labelled_branches_needs_head(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    edit_all(
        project / "models.py",
        "    body: Mapped[str] = mapped_column(String(500))\n",
        "    body: Mapped[str] = mapped_column(String(500))\n"
        "    title: Mapped[str | None] = mapped_column(String(50))\n",
    )
    assert main(["revision", "-m", "title"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "revision: the history has several heads: pass --head contract@head" in err
    args = ["revision", "-m", "title", "--head", "expand@head", "--rev-id", "0004"]
    assert main(args) == EXIT_OK
    assert 'down_revision = "0002"' in (project / "versions" / "0004_title.py").read_text()
    assert main([]) == EXIT_OK
    assert "heads 0003, 0004" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "labelled", "expected"),
    [
        ("heads = 2", False, EXIT_OK),
        ("heads = 3", False, EXIT_FINDINGS),
        ('heads = ["expand", "contract"]', True, EXIT_OK),
        ('heads = ["expand"]', True, EXIT_FINDINGS),
        ('heads = ["expand", "contract"]', False, EXIT_FINDINGS),
    ],
)
def test_heads_setting_names_the_expected_heads(
    setting: str, labelled: bool, expected: int, scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    project = scenario("branches")
    (project / "pyproject.toml").write_text(f"[tool.check-migrations]\n{setting}\n")
    if not labelled:
        for name in ("0002_notes.py", "0003_name_index.py"):
            path = project / "versions" / name
            edit_all(path, path.read_text().split("branch_labels = ")[1].split("\n")[0], "None")
    assert main([]) == expected
    out = capsys.readouterr().out
    if expected == EXIT_FINDINGS:
        assert "the heads setting expects" in out


def test_bad_heads_setting_is_one_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    (project / "pyproject.toml").write_text("[tool.check-migrations]\nheads = 0\n")
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "invalid value 0 for heads (a number of heads, or a list of branch labels)" in err
