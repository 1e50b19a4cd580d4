"""The bench's rows (bench/run.py prints them): each the checker against a peer, one run."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

from common import (
    CHECK,
    HIT,
    PYTHON,
    Agreement,
    Peer,
    Row,
    agree,
    alternate,
    bench_env,
    caches,
    copy_project,
    drop_caches,
    edited_then_reused,
    has_flag,
    reachable_bindir,
    run,
    scripted_pipeline,
    touch_model,
)
from generate import generate
from realhist import PROJECTS, RealProject
from realrows import Phases, real_rows
from resident import agree_warm, warm_rows

from migration_check.postgres.server import ThrowawayServer, find_binaries, resolve_server_user


def measure_rows(
    args: argparse.Namespace, tmp: Path, progress: Callable[[str], None]
) -> tuple[list[Row], Agreement, Phases]:
    reps = args.reps
    base_env = bench_env(tmp)
    bindir = reachable_bindir()
    project = copy_project(tmp / "repo")
    model = project / "expense_models" / "tags.py"
    edits = [0]
    warm_env = {**base_env, **caches(tmp, "warm")}
    rows: list[Row] = []
    agreement: Agreement = []
    found: Phases = []
    if args.real_only:
        with ThrowawayServer(find_binaries(None), resolve_server_user(None)) as server:
            return real_rows(tmp, base_env, server, reps, progress, _projects(args))
    # Fills the bytecode prefix for both sides and the checker's caches.
    run(CHECK, cwd=project, env=warm_env)
    with ThrowawayServer(find_binaries(None), resolve_server_user(None)) as server:
        peer = Peer(server)
        url = peer.database_url(project, base_env)
        Peer.check(project, base_env, url)

        progress("warm, a model edited vs bare alembic check")
        rows += edited_then_reused(
            command=CHECK,
            reps=reps,
            env=warm_env,
            project=project,
            model=model,
            edits=edits,
            peer=lambda: Peer.check(project, base_env, url),
            names=(
                "warm check, a model edited (caches filled)",
                "  same, history reused (verdict cache off, no edit)",
                "bare `alembic check`, server up, database at head",
            ),
            target=0.75,
            reused_target=0.5,
        )

        progress("the same, forked by the resident worker (--keep-warm)")
        rows += warm_rows(
            reps=reps,
            env=warm_env,
            project=project,
            model=model,
            peer=lambda: Peer.check(project, base_env, url),
            names=(
                "warm check, a model edited, --keep-warm",
                "  same, history reused, --keep-warm",
                "bare `alembic check`, server up, database at head",
            ),
            target=0.5,
        )

        progress("unchanged inputs vs bare alembic check")
        run(CHECK, cwd=project, env=warm_env)  # stores the verdict

        def unchanged() -> float:
            outcome = run(CHECK, cwd=project, env=warm_env)
            assert HIT in outcome.err, f"unchanged inputs, yet no cached verdict: {outcome.err}"
            return outcome.seconds

        ours, theirs = alternate(reps, unchanged, lambda: Peer.check(project, base_env, url))
        rows.append(
            Row(
                "unchanged inputs (verdict cache)",
                ours,
                "bare `alembic check`, server up, database at head",
                theirs,
                0.1,
            )
        )

        progress("catalog comparison's cost")
        if has_flag("--autogenerate-only", warm_env):

            def changed(*extra: str) -> float:
                touch_model(model, edits)
                outcome = run([*CHECK, *extra], cwd=project, env=warm_env)
                assert HIT not in outcome.err, "inputs changed, yet the verdict was served"
                return outcome.seconds

            run([*CHECK, "--autogenerate-only"], cwd=project, env=warm_env)
            ours, theirs = alternate(reps, changed, lambda: changed("--autogenerate-only"))
            rows.append(
                Row(
                    "warm check, inputs changed",
                    ours,
                    "the same with --autogenerate-only",
                    theirs,
                    1.15,
                )
            )
        else:
            rows.append(
                Row(
                    "warm check, inputs changed",
                    1.0,
                    "the same with --autogenerate-only",
                    1.0,
                    None,
                    "skipped: this checker has no --autogenerate-only",
                )
            )

        if not args.no_scale:
            progress("800 tables vs bare alembic check on the same project")
            big = generate(tmp / "big", tables=800, revisions=10).parent
            big_env = {**base_env, **caches(tmp, "big")}
            run(CHECK, cwd=big, env=big_env)  # fills the caches and the project's bytecode
            big_url = peer.database_url(big, base_env)
            Peer.check(big, base_env, big_url)
            rows += edited_then_reused(
                command=CHECK,
                reps=max(3, reps // 2),
                env=big_env,
                project=big,
                model=big / "models.py",
                edits=[0],
                peer=lambda: Peer.check(big, base_env, big_url),
                names=(
                    "800 tables, warm, a model edited",
                    "  same, history reused (verdict cache off, no edit)",
                    "bare `alembic check` on it, at head",
                ),
                target=1.0,
            )
            progress("800 tables, forked by the resident worker (--keep-warm)")
            rows += warm_rows(
                reps=max(3, reps // 2),
                env=big_env,
                project=big,
                model=big / "models.py",
                peer=lambda: Peer.check(big, base_env, big_url),
                names=(
                    "800 tables, a model edited, --keep-warm",
                    "  same, history reused, --keep-warm",
                    "bare `alembic check` on it, at head",
                ),
                target=1.0,
            )
            agreement.append(("800 tables", *agree(big, big_env)))

        if not args.no_real:
            real, real_agreement, found = real_rows(
                tmp, base_env, server, reps, progress, _projects(args)
            )
            rows += real
            agreement += real_agreement

    progress("what a resident worker would save: the worker's library imports")
    imports = "import sqlalchemy, psycopg, alembic.script, alembic.runtime.environment, " + (
        "alembic.autogenerate"
    )
    heavy, bare = alternate(
        reps,
        lambda: run([PYTHON, "-c", imports], cwd=project, env=base_env).seconds,
        lambda: run([PYTHON, "-c", "pass"], cwd=project, env=base_env).seconds,
    )
    rows.append(
        Row(
            "worker start-up: python + SQLAlchemy, psycopg, Alembic imports",
            heavy,
            "python -c pass",
            bare,
            None,
            "",
        )
    )

    progress("cold vs the scripted pipeline")

    def cold() -> float:
        env = {**base_env, **caches(tmp, "cold")}
        try:
            return run(CHECK, cwd=project, env=env).seconds
        finally:
            drop_caches(tmp, "cold")

    ours, theirs = alternate(reps, cold, lambda: scripted_pipeline(project, base_env, tmp, bindir))
    rows.append(
        Row(
            "cold check (empty caches)",
            ours,
            "scripted: initdb, start, upgrade, check, stop",
            theirs,
            0.35,
        )
    )

    progress("CI with the initialised cluster restored vs the scripted pipeline")
    ci_env = {**base_env, **caches(tmp, "ci")}
    run(CHECK, cwd=project, env=ci_env)  # initialises the cluster, as a restored cache holds it

    def ci() -> float:
        # What migrations.yml restores is the cluster alone: no migrated database, no verdict.
        run_root = Path(ci_env["CHECK_MIGRATIONS_RUN_DIR"])
        for path in [*run_root.glob("check-migrations-cache-*"),
                     Path(ci_env["XDG_CACHE_HOME"]) / "check-migrations" / "verdicts"]:  # fmt: skip
            shutil.rmtree(path, ignore_errors=True)
        return run(CHECK, cwd=project, env=ci_env).seconds

    ours, theirs = alternate(reps, ci, lambda: scripted_pipeline(project, base_env, tmp, bindir))
    rows.append(
        Row(
            "CI: initialised cluster restored, nothing else",
            ours,
            "scripted: initdb, start, upgrade, check, stop",
            theirs,
            0.35,
        )
    )

    progress("verdicts with and without the caches")
    agreement.append(("this repository", *agree(project, warm_env)))
    agreement.append(("this repository, --keep-warm", *agree_warm(warm_env, project)))
    text = model.read_text()
    drifted = text.replace(
        "name: Mapped[str] = mapped_column(String(50))",
        "name: Mapped[str] = mapped_column(String(60))",
    )
    assert drifted != text
    model.write_text(drifted)
    agreement.append(("a model change without revision", *agree(project, warm_env)))
    agreement.append(("the same, --keep-warm", *agree_warm(warm_env, project)))
    model.write_text(text)
    agreement.append(("back in sync", *agree(project, warm_env)))
    return rows, agreement, found


def _projects(args: argparse.Namespace) -> tuple[RealProject, ...]:
    if not args.real:
        return PROJECTS
    chosen = tuple(p for p in PROJECTS if any(p.name.startswith(n) for n in args.real))
    if not chosen:
        raise SystemExit(f"--real: none of {', '.join(p.name for p in PROJECTS)}")
    return chosen
