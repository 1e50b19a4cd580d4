"""The checker run in this process (``main([...])``): its exit code and what it printed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from migration_check.cli.app import main


def json_check(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    """Exit code, JSON report and stderr of ``check-migrations --format json ARGS``."""
    code = main(["--format", "json", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, report, _err = json_check(list(args), capsys)
    return code, report


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``check-migrations ARGS``."""
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err
