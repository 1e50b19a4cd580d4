"""A model edit may reuse the migrated database only where the replay is known not to depend on
it (issue 20): the counterexamples, each shown to fall back to a replay.

Each case is one way the models reach the migrated database without a revision importing them
for it, or with one doing so: the target metadata's naming convention (``op.*`` name
constraints with it), a ``@compiles`` override, an event listener, a ``TypeDecorator`` that
``op.bulk_insert`` binds through, env.py reading ``Base.metadata.schema``, a revision reading a
model module's class attribute. tests/soundness.py runs the differential: caches filled, the
perturbation first shown to change the ``--no-cache`` verdict, the default check held to it.
On top, the default check must say with ``-v`` why it replayed ("replaying the history: ...").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.edits import edit
from tests.helpers.soundness import (
    Case,
    Check,
    add_revision,
    differential,
    drift_in_notes,
    new_check,
)

MODELS_IMPORTS = "from sqlalchemy import ForeignKey, MetaData, String, text\n"


def _verbose(c: Check) -> None:
    c.args[:] = ["-v"]


def _unique_by_convention(c: Check) -> None:
    """A revision leaves a unique constraint's name to the naming convention; the model names
    it explicitly, so a convention edited in the models changes only what the replay builds."""
    _verbose(c)
    add_revision(
        c.project,
        '    op.create_unique_constraint(None, "notes", ["body"])\n',
        '    op.drop_constraint("uq_notes_body", "notes")\n',
    )
    edit(
        c.project / "models.py",
        '    __tablename__ = "notes"\n',
        '    __tablename__ = "notes"\n    __table_args__ = (UniqueConstraint("body", '
        'name="uq_notes_body"),)\n',
    )
    edit(c.project / "models.py", MODELS_IMPORTS, MODELS_IMPORTS.rstrip() + ", UniqueConstraint\n")


def _convention_in_class_body(c: Check) -> None:
    """The same, with the convention declared in the declarative base's class body: no
    module-level code changes, so the worker's record of the metadata must catch it."""
    _unique_by_convention(c)
    models = c.project / "models.py"
    text = models.read_text()
    start, end = text.index("metadata = MetaData("), text.index("})\n") + 3
    convention = text[start:end].replace("metadata = ", "    metadata = ").replace("\n", "\n    ")
    text = text[:start] + text[end:]
    text = text.replace("    metadata = metadata\n", convention.rstrip() + "\n")
    text = text.replace("\n\nclass User(", "\nmetadata = Base.metadata\n\n\nclass User(")
    models.write_text(text)


def _rename_uq(c: Check) -> None:
    edit(c.project / "models.py", '"uq": "uq_%(table_name)s', '"uq": "uniq_%(table_name)s')


_COMPILES = """

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable


@compiles(CreateTable)
def _create_table(element, compiler, **kw):
    return compiler.visit_create_table(element, **kw)
"""


def _compiles_setup(c: Check) -> None:
    _verbose(c)
    with (c.project / "models.py").open("a") as fh:
        fh.write(_COMPILES)


def _compiles_edit(c: Check) -> None:
    edit(
        c.project / "models.py",
        "    return compiler.visit_create_table(element, **kw)",
        '    return compiler.visit_create_table(element, **kw).replace("VARCHAR(500)", '
        '"VARCHAR(400)")',
    )


_LISTENER = """

from sqlalchemy import Table, event


@event.listens_for(Table, "after_create")
def _narrow_body(table, connection, **kw):
    if table.name == "notes":
        connection.exec_driver_sql("ALTER TABLE notes ALTER COLUMN body TYPE VARCHAR(400)")
"""


def _listener_add(c: Check) -> None:
    with (c.project / "models.py").open("a") as fh:
        fh.write(_LISTENER)


_TYPE = """

from sqlalchemy.types import TypeDecorator


class Label(TypeDecorator):
    impl = String(50)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value
"""


def _type_setup(c: Check) -> None:
    """A revision inserts a row through a model's type, then names a column after it."""
    _verbose(c)
    with (c.project / "models.py").open("a") as fh:
        fh.write(_TYPE)
    add_revision(
        c.project,
        '    op.create_table("labels", sa.Column("name", sa.String(50), primary_key=True))\n'
        '    op.bulk_insert(sa.table("labels", sa.column("name", Label())), [{"name": "flag"}])\n'
        '    name = op.get_bind().execute(sa.text("SELECT name FROM labels")).scalar()\n'
        '    op.add_column("notes", sa.Column(name, sa.Integer(), nullable=True))\n',
        '    op.drop_column("notes", "flag")\n    op.drop_table("labels")\n',
        "from models import Label\n",
    )
    body = "    body: Mapped[str] = mapped_column(String(500))\n"
    edit(c.project / "models.py", body, body + "    flag: Mapped[int | None]\n")
    with (c.project / "models.py").open("a") as fh:
        fh.write(
            "\n\nclass LabelRow(Base):\n"
            '    __tablename__ = "labels"\n\n'
            "    name: Mapped[str] = mapped_column(String(50), primary_key=True)\n"
        )


def _type_edit(c: Check) -> None:
    edit(c.project / "models.py", "        return value\n", "        return value.upper()\n")


_SEARCH_PATH = (
    '        connectable.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")\n'
    '        connectable.exec_driver_sql(f"SET search_path TO {SCHEMA}")\n'
)


def _schema_setup(c: Check) -> None:
    """env.py migrates into the schema the models' metadata names (its version table stays in
    public): a schema edited in the models changes where the replay builds the tables."""
    _verbose(c)
    env_py = c.project / "env.py"
    edit(env_py, "target_metadata = metadata\n",
         'target_metadata = metadata\nSCHEMA = target_metadata.schema or "public"\n')  # fmt: skip
    edit(env_py, "    if connectable is not None:\n",
         "    if connectable is not None:\n" + _SEARCH_PATH)  # fmt: skip
    text = env_py.read_text().replace(
        "compare_server_default=True)",
        'compare_server_default=True, version_table_schema="public")',
    )
    env_py.write_text(text)


def _schema_edit(c: Check) -> None:
    edit(c.project / "models.py", "metadata = MetaData(", 'metadata = MetaData(schema="app", ')


def _revision_import_setup(c: Check) -> None:
    """A revision reads a model module's class attribute (not part of its model digest)."""
    _verbose(c)
    edit(c.project / "models.py", "class Base(", "class Limits:\n    TITLE = 80\n\n\nclass Base(")
    add_revision(
        c.project,
        '    op.add_column("notes", sa.Column("title", sa.String(Limits.TITLE), nullable=True))\n',
        '    op.drop_column("notes", "title")\n',
        "from models import Limits\n",
    )
    body = "    body: Mapped[str] = mapped_column(String(500))\n"
    edit(c.project / "models.py", body, body + "    title: Mapped[str | None] = "
         "mapped_column(String(80))\n")  # fmt: skip


def _revision_import_edit(c: Check) -> None:
    edit(c.project / "models.py", "    TITLE = 80\n", "    TITLE = 60\n")


def _tracer_setup(c: Check) -> None:
    """env.py installs a tracer of its own (as coverage or a debugger would): the record's
    trace cannot be taken, so it vouches for nothing."""
    _verbose(c)
    edit(
        c.project / "env.py",
        "import os\n",
        "import os\nimport sys\n\nsys.settrace(lambda *a: None)\n",
    )


CASES = [
    (Case("naming convention edited", _unique_by_convention, _rename_uq),
     "models.py changed beyond its column declarations"),
    (Case("naming convention edited in the base's class body", _convention_in_class_body,
          _rename_uq), "the target metadata's naming_convention changed"),
    (Case("@compiles override in a model module edited", _compiles_setup, _compiles_edit),
     "the upgrade called models.py:_create_table"),
    (Case("event listener added to a model module", _verbose, _listener_add),
     "models.py changed beyond its column declarations"),
    (Case("TypeDecorator bulk_insert binds through edited", _type_setup, _type_edit),
     "the upgrade called models.py:Label.process_bind_param"),
    (Case("env.py reads Base.metadata.schema", _schema_setup, _schema_edit),
     "reads the models' data (target_metadata.schema)"),
    (Case("a revision imports a model module", _revision_import_setup, _revision_import_edit),
     "versions/0003_more.py imports models.py"),
    (Case("a tracer is already set", _tracer_setup, lambda c: drift_in_notes(c.project)),
     "a trace could not be taken (another tracer is set)"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "said"), CASES, ids=[case.id for case, _ in CASES])
def test_model_edit_falls_back_to_a_replay(
    tmp_path: Path, run_root: Path, case: Case, said: str
) -> None:
    check = new_check(tmp_path, run_root)
    cached = differential(check, case)
    replayed = [line for line in cached.stderr.splitlines() if "replaying the history" in line]
    assert len(replayed) == 1, cached.stderr
    assert said in replayed[0], cached.stderr
    # The whole history ran: the last upgrade applied every revision there is.
    applied = re.findall(r"upgrading (\d+) revision\(s\)", cached.stderr)
    revisions = len(list((check.project / "versions").glob("*.py")))
    assert applied, cached.stderr
    assert int(applied[-1]) == revisions, cached.stderr
