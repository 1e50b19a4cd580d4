"""Benchmark check-migrations against its peers (issue 12): every row a ratio from one run.

    uv run python bench/run.py              # medians of 7, about 10 minutes on 2 busy cores
    uv run python bench/run.py --quick      # medians of 3
    uv run python bench/run.py --initdb     # also: what initdb's options and copying cost
    uv run python bench/run.py --real-only  # only the real long histories (airflow, mlflow)

Each row times the checker and a peer alternately (A B A B ..., so a change in the machine's load
hits both) and prints the ratio of the medians:

- warm, inputs changed: this repository with every cache filled, a model file edited before
  each run (so the verdict cache misses), against a bare ``alembic check`` on a PostgreSQL this
  bench keeps running with a database already at head; and the same with the verdict cache
  off and nothing edited, so the migrated database is reused (a model edit replays the history
  today: the migrated database's key holds every module env.py loaded);
- the same two, each check forked by the opt-in resident worker (``--keep-warm``, a private
  ``XDG_RUNTIME_DIR``; bench/resident.py), which holds SQLAlchemy, Alembic and psycopg imported;
- unchanged inputs: the same check again with nothing changed (the verdict cache answers),
  against the same bare ``alembic check``;
- cold: empty caches, against the scripted pipeline a user would write (``initdb``, ``pg_ctl
  start``, ``alembic upgrade head``, ``alembic check``, ``pg_ctl stop``);
- 800 tables: a project from ``bench/generate.py``, warm with a model edited (and with the
  history reused), with and without ``--keep-warm``, against a bare ``alembic check`` on the
  same project at head;
- real long histories (issue 20; bench/realhist.py, bench/realrows.py): apache-airflow-core
  3.3.2 (124 revisions) and mlflow-skinny 3.17.2 (67), each installed pinned into its own venv
  under bench/.work/ (reused by the next run): a model edited, the history reused, a model
  edited with its new revision, against a bare ``alembic check`` at head; one ``-v`` check of
  each, split into phases by its time stamps; ``--no-real`` skips them, ``--real-only`` runs
  them alone, ``--real NAME`` picks one;
- CI: the initialised cluster restored (as migrations.yml does) and nothing else;
- the catalog comparison's cost: warm against warm with ``--autogenerate-only`` (skipped with a
  note while the checker has no such flag).

Then every scenario runs both ways, with the caches and with ``--no-cache`` (and forked by the
resident worker against ``--no-cache``): a different exit code or output fails the bench (exit 1).

The rows live in bench/rows.py and bench/resident.py, the shared parts in bench/common.py.

Bytecode is written, as on a user's machine (``PYTHONDONTWRITEBYTECODE`` unset, a private
``PYTHONPYCACHEPREFIX`` filled before timing), for the checker and the peers alike. The checker
runs as ``python tools/check_migrations.py`` with the project's interpreter, the peers as the
project's ``alembic`` script; all caches are private to the run and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import reachable_bindir, workspace
from rows import measure_rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _pg_version(bindir: Path) -> str:
    proc = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "PostgreSQL ?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="medians of 3")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement [7]")
    parser.add_argument("--no-scale", action="store_true", help="skip the 800-table project")
    parser.add_argument("--initdb", action="store_true", help="also time initdb's options")
    parser.add_argument("--no-real", action="store_true", help="skip the real long histories")
    parser.add_argument(
        "--real-only", action="store_true", help="only the real long histories' rows"
    )
    parser.add_argument(
        "--real", action="append", metavar="NAME", help="only this real project (repeatable)"
    )
    args = parser.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 7)
    began = time.perf_counter()
    load_before = os.getloadavg()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - began:5.0f}s] {message}", file=sys.stderr, flush=True)

    with workspace() as tmp:
        rows, agreement, phases = measure_rows(args, tmp, progress)
        study = []
        if args.initdb:
            from initdb_costs import measure

            progress("initdb options and copying")
            study = measure(tmp, reachable_bindir(), args.reps, progress)
    load_after = os.getloadavg()

    print(
        f"check-migrations benchmark: {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {_pg_version(reachable_bindir())}"
    )
    print(
        f"medians of {args.reps} (800 tables: {max(3, args.reps // 2)}), checker and peer "
        f"alternating; bytecode written as on a user's machine (PYTHONDONTWRITEBYTECODE unset "
        f"for every measured process); bench took {time.perf_counter() - began:.0f} s; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    table = [["row", "checker", "peer", "peer time", "ratio", "target", "met?"]]
    for r in rows:
        if r.note:
            table.append([r.name, "", r.peer_name, "", "", "", r.note])
            continue
        target = f"<= {r.target:.2f}" if r.target is not None else ""
        met = "" if r.target is None else ("met" if r.ratio <= r.target else "NOT met")
        table.append(
            [
                r.name,
                f"{r.ours:.2f} s",
                r.peer_name,
                f"{r.peer:.2f} s",
                f"{r.ratio:.2f}",
                target,
                met,
            ]
        )
    print(_table(table))
    print("\nverdicts, with the caches vs --no-cache (exit code and output must be identical):\n")
    print(
        _table(
            [
                ["scenario", "same?", "exit codes"],
                *([name, "yes" if same else "NO", how] for name, same, how in agreement),
            ]
        )
    )
    if phases:
        print(
            "\nwhere a real history's check goes (one -v run each; each phase from its stamp "
            "to the next):\n"
        )
        print(
            _table(
                [
                    ["check", "phase", "seconds"],
                    *([a, b, "" if c is None else f"{c:.2f}"] for a, b, c in phases),
                ]
            )
        )
    identical = all(same for _, same, _ in agreement)
    print(f"\nverdicts identical: {'yes' if identical else 'no'}")
    if study:
        print("\ninitdb options and copying (medians):\n")
        print(_table([["what", "seconds", "vs the checker's initdb"], *study]))
    if not identical:
        print("\nFAILED: a cached verdict differs from the uncached one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
