"""Safe forms pasted back: a scenario whose models are the change's end state, and the cases.

The safety scenario's own env.py compares nothing; here it is replaced by one that compares
(the scenario's models, edited to what the change means to reach), so a pasted safe form must
both pass the safety observation and reach the models' schema: a form that leaves a column of
the wrong type, a stray CHECK or a missing constraint is drift.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.git import git
from tests.helpers.safety import REVISION
from tests.helpers.scenarios import ScenarioFactory

__all__ = ["FORMS", "Form", "build", "paste"]

LABEL = "# revision 2 "

ENV = """from alembic import context

from models import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  transaction_per_migration=bool(config.get_main_option("per_migration")))
with context.begin_transaction():
    context.run_migrations()
"""


@dataclass(frozen=True)
class Form:
    """One hazard: the unsafe op, the models it means to reach, the names its form must say.

    ``downs``: the downgrade of each part of the pasted form (one, or two for a form in two
    revisions), so the round trip of the pasted revisions holds as well.
    """

    id: str
    kind: str
    unsafe: str
    undo: str
    models: tuple[tuple[str, str], ...]
    names: tuple[str, ...]
    downs: tuple[str, ...]
    base: str = ""
    base_undo: str = "pass"


def _block(code: str) -> str:
    return "\n".join("    " + line if line else "" for line in code.strip("\n").splitlines())


def _revision(rev: str, down: str, upgrade: str, downgrade: str) -> str:
    return REVISION.format(rev=rev, down=down, upgrade=_block(upgrade or "pass"),
                           downgrade=_block(downgrade))  # fmt: skip


def build(scenario: ScenarioFactory, form: Form, parts: list[str], downs: list[str], *,
          dest: str, per_migration: bool = True) -> Path:  # fmt: skip
    """Main: the scenario (and ``form.base`` as 0003); feature: the models and ``parts``.

    Two parts are two new revisions, 0100 and 0101, each in its own transaction
    (``transaction_per_migration``), as the form's label asks; ``per_migration=False`` keeps
    Alembic's default, one transaction for the whole upgrade.
    """
    project = scenario("safety", dest)
    (project / "env.py").write_text(ENV)
    down = "0002"
    if form.base:
        (project / "versions" / "0003_base.py").write_text(
            _revision("0003", "0002", form.base, form.base_undo)
        )
        down = "0003"
    if len(parts) > 1 and per_migration:
        ini = project / "alembic.ini"
        ini.write_text(ini.read_text().replace("[alembic]\n", "[alembic]\nper_migration = 1\n", 1))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")
    models = project / "models.py"
    text = models.read_text()
    for old, new in form.models:
        assert old in text, old
        text = text.replace(old, new, 1) if old else text + new
    models.write_text(text)
    for i, (part, undo) in enumerate(zip(parts, downs, strict=True)):
        rev = f"{100 + i:04d}"
        (project / "versions" / f"{rev}_new.py").write_text(_revision(rev, down, part, undo))
        down = rev
    git(project, "add", "-A")
    return project


# The first line of upgrade()'s body in REVISION.
FIRST_BODY_LINE = 16


def paste(unsafe: str, op: str, line: int) -> list[str]:
    """``unsafe`` with the statement at ``line`` of the revision replaced by the form's first
    part; the second part (after its label line), if any, as the next revision's body."""
    first, sep, second = op.partition("\n" + LABEL)
    if not sep and op.startswith(LABEL):
        first, second, sep = "", op[len(LABEL) :], LABEL
    at = line - FIRST_BODY_LINE + 1
    lines = unsafe.strip("\n").splitlines()
    node = next(
        n for n in ast.parse("\n".join(lines)).body if n.lineno <= at <= (n.end_lineno or at)
    )
    body = [*lines[: node.lineno - 1], *first.splitlines(), *lines[node.end_lineno or at :]]
    parts = ["\n".join(body)]
    if sep:
        parts.append("\n".join(second.splitlines()[1:]))
    return parts


_NAME = "name: Mapped[str | None] = mapped_column(String(100))"
_IMPORTS = "from sqlalchemy import ForeignKey, MetaData, String, text"
_CHECK = ('__table_args__ = (CheckConstraint("length(email) > 0", name="email_len"),)\n\n'
          '    id: Mapped[int]')  # fmt: skip
_NN = ('op.create_check_constraint(op.f("ck_users_{c}_not_null"), "users", "{c} IS NOT NULL", '
       "postgresql_not_valid=True)")  # fmt: skip

FORMS = [
    Form("retype", "table_rewrite",
         'op.alter_column("users", "name", type_=sa.String(50), existing_type=sa.String(100),\n'
         "                existing_nullable=True)",
         'op.alter_column("users", "name", type_=sa.String(100), existing_type=sa.String(50))',
         ((_NAME, 'name: Mapped[str | None] = mapped_column(String(50))'),),
         ('op.add_column("users", sa.Column("name_new", sa.String(50), nullable=True))',
          "UPDATE users SET name_new = name WHERE ctid = ANY(ARRAY(SELECT ctid FROM users "
          "WHERE name_new IS NULL AND name IS NOT NULL LIMIT 5000))",
          'op.drop_column("users", "name")',
          'op.alter_column("users", "name_new", new_column_name="name")'),
         ('op.drop_column("users", "name_new")',
          'op.alter_column("users", "name", new_column_name="name_new")\n'
          'op.add_column("users", sa.Column("name", sa.String(100), nullable=True))')),
    Form("retype_sql", "table_rewrite",
         'op.execute("ALTER TABLE users ALTER COLUMN name TYPE varchar(50)")',
         'op.execute("ALTER TABLE users ALTER COLUMN name TYPE varchar(100)")',
         ((_NAME, 'name: Mapped[str | None] = mapped_column(String(50))'),),
         ('op.execute("ALTER TABLE users ADD COLUMN name_new varchar(50)")',
          "UPDATE users SET name_new = name WHERE",
          'op.drop_column("users", "name")',
          'op.alter_column("users", "name_new", new_column_name="name")'),
         ('op.drop_column("users", "name_new")',
          'op.alter_column("users", "name", new_column_name="name_new")\n'
          'op.add_column("users", sa.Column("name", sa.String(100), nullable=True))')),
    Form("volatile_default", "table_rewrite",
         'op.add_column("users", sa.Column("joined_at", sa.DateTime(timezone=True),\n'
         '              server_default=sa.text("clock_timestamp()"), nullable=True))',
         'op.drop_column("users", "joined_at")',
         ((_IMPORTS, _IMPORTS.replace("String", "DateTime, String")),
          (_NAME, _NAME + "\n    joined_at: Mapped[datetime.datetime | None] = mapped_column("
           'DateTime(timezone=True), server_default=text("clock_timestamp()"))'),
          ("from sqlalchemy import", "import datetime\n\nfrom sqlalchemy import")),
         ("op.add_column(\"users\", sa.Column('joined_at', sa.DateTime(timezone=True), "
          "nullable=True))",
          "op.alter_column(\"users\", \"joined_at\", server_default=sa.text('clock_timestamp()'))",
          "UPDATE users SET joined_at = DEFAULT WHERE ctid = ANY(ARRAY(SELECT ctid FROM users "
          "WHERE joined_at IS NULL LIMIT 5000))"),
         ('op.drop_column("users", "joined_at")',)),
    Form("volatile_not_null", "table_rewrite",
         'op.add_column("users", sa.Column("token", sa.Uuid(),\n'
         '              server_default=sa.text("gen_random_uuid()"), nullable=False))',
         'op.drop_column("users", "token")',
         ((_IMPORTS, _IMPORTS.replace("String", "String, Uuid")),
          (_NAME, _NAME + "\n    token: Mapped[uuid.UUID] = mapped_column("
           'Uuid, server_default=text("gen_random_uuid()"))'),
          ("from sqlalchemy import", "import uuid\n\nfrom sqlalchemy import")),
         ("op.add_column(\"users\", sa.Column('token', sa.Uuid(), nullable=True))",
          "op.alter_column(\"users\", \"token\", server_default=sa.text('gen_random_uuid()'))",
          "SET token = DEFAULT", _NN.format(c="token"),
          "ALTER TABLE users VALIDATE CONSTRAINT ck_users_token_not_null",
          'op.alter_column("users", "token", nullable=False)'),
         ('op.drop_column("users", "token")',
          _NN.format(c="token") + '\nop.alter_column("users", "token", nullable=True)')),
    Form("identity", "table_rewrite",
         'op.add_column("users", sa.Column("number", sa.BigInteger(), sa.Identity(),\n'
         "              nullable=False))",
         'op.drop_column("users", "number")',
         ((_IMPORTS, _IMPORTS.replace("String", "BigInteger, Identity, String")),
          (_NAME, _NAME + "\n    number: Mapped[int] = mapped_column(BigInteger, Identity())")),
         ("op.add_column(\"users\", sa.Column('number', sa.BigInteger(), nullable=True))",
          "CREATE SEQUENCE users_number_seq OWNED BY users.number",
          "server_default=sa.text(\"nextval('users_number_seq'::regclass)\")",
          "ALTER TABLE users ALTER COLUMN number ADD GENERATED BY DEFAULT AS IDENTITY",
          "SELECT setval(pg_get_serial_sequence('users', 'number')"),
         ('op.drop_column("users", "number")',
          'op.execute("ALTER TABLE users ALTER COLUMN number DROP IDENTITY")\n'
          'op.execute("CREATE SEQUENCE users_number_seq OWNED BY users.number")\n'
          'op.alter_column("users", "number", '
          "server_default=sa.text(\"nextval('users_number_seq'::regclass)\"))\n"
          + _NN.format(c="number") + '\nop.alter_column("users", "number", nullable=True)')),
    Form("set_not_null", "set_not_null",
         'op.alter_column("users", "name", existing_type=sa.String(100), nullable=False)',
         'op.alter_column("users", "name", existing_type=sa.String(100), nullable=True)',
         ((_NAME, "name: Mapped[str] = mapped_column(String(100))"),),
         (_NN.format(c="name"),
          'op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_name_not_null")',
          "op.alter_column('users', 'name', existing_type=sa.String(100), nullable=False)",
          'op.drop_constraint(op.f("ck_users_name_not_null"), "users", type_="check")'),
         ('op.drop_constraint(op.f("ck_users_name_not_null"), "users", type_="check")',
          _NN.format(c="name") + '\nop.alter_column("users", "name", nullable=True)')),
    Form("set_not_null_quoted", "set_not_null",  # a name PostgreSQL must see quoted
         'op.alter_column("users", "Nick", existing_type=sa.String(20), nullable=False)',
         'op.alter_column("users", "Nick", existing_type=sa.String(20), nullable=True)',
         ((_NAME, _NAME + "\n    Nick: Mapped[str] = mapped_column(String(20))"),),
         ('op.create_check_constraint(op.f("ck_users_Nick_not_null"), "users", '
          '"\\"Nick\\" IS NOT NULL", postgresql_not_valid=True)',
          'op.execute("ALTER TABLE users VALIDATE CONSTRAINT \\"ck_users_Nick_not_null\\"")'),
         ('op.drop_constraint(op.f("ck_users_Nick_not_null"), "users", type_="check")',
          'op.create_check_constraint(op.f("ck_users_Nick_not_null"), "users", '
          '\'"Nick" IS NOT NULL\', postgresql_not_valid=True)\n'
          'op.alter_column("users", "Nick", nullable=True)'),
         base='op.add_column("users", sa.Column("Nick", sa.String(20), nullable=True))',
         base_undo='op.drop_column("users", "Nick")'),
    Form("not_null_without_default", "not_null_without_default",
         'op.add_column("users", sa.Column("age", sa.Integer(), nullable=False))',
         'op.drop_column("users", "age")',
         ((_NAME, _NAME + "\n    age: Mapped[int]"),),
         ("op.add_column(\"users\", sa.Column('age', sa.Integer(), nullable=False, "
          "server_default=sa.text('0')))",
          'op.alter_column("users", "age", server_default=None)'),
         ('op.drop_column("users", "age")',)),
    Form("unique_constraint", "unique_constraint",
         'op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_email_name UNIQUE (email, name)")',
         'op.drop_constraint("uq_users_email_name", "users", type_="unique")',
         ((_IMPORTS, _IMPORTS.replace("String", "String, UniqueConstraint")),
          ("id: Mapped[int]", '__table_args__ = (UniqueConstraint("email", "name", '
           'name="uq_users_email_name"),)\n\n    id: Mapped[int]')),
         ('op.create_index(op.f("uq_users_email_name"), "users", ["email", "name"], unique=True, '
          "postgresql_concurrently=True)",
          "ALTER TABLE users ADD CONSTRAINT uq_users_email_name UNIQUE USING INDEX "
          "uq_users_email_name"),
         ('op.drop_constraint("uq_users_email_name", "users", type_="unique")',)),
    Form("primary_key", "unique_constraint",
         'op.create_primary_key("pk_tags", "tags", ["id"])',
         'op.drop_constraint("pk_tags", "tags", type_="primary")',
         (("", '\n\nclass Tag(Base):\n    __tablename__ = "tags"\n\n'
           "    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)\n"
           "    label: Mapped[str | None] = mapped_column(String(20))\n"),),
         ('op.create_index(op.f("pk_tags"), "tags", ["id"], unique=True, '
          "postgresql_concurrently=True)",
          "ALTER TABLE tags ADD CONSTRAINT pk_tags PRIMARY KEY USING INDEX pk_tags"),
         ('op.drop_constraint("pk_tags", "tags", type_="primary")',),
         base='op.create_table("tags", sa.Column("id", sa.Integer(), nullable=False),\n'
              '                sa.Column("label", sa.String(20), nullable=True))',
         base_undo='op.drop_table("tags")'),
    Form("constraint_validated", "constraint_validated",
         'op.create_check_constraint("email_len", "users", "length(email) > 0")',
         'op.drop_constraint("email_len", "users", type_="check")',
         ((_IMPORTS, _IMPORTS.replace("ForeignKey", "CheckConstraint, ForeignKey")),
          ("    id: Mapped[int]", "    " + _CHECK)),
         ("op.create_check_constraint('email_len', 'users', 'length(email) > 0', "
          "postgresql_not_valid=True)",
          'op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_email_len")'),
         ('op.drop_constraint("email_len", "users", type_="check")', "pass")),
    Form("validate_same_transaction", "validate_same_transaction",
         'op.create_check_constraint("email_len", "users", "length(email) > 0",\n'
         "                            postgresql_not_valid=True)\n"
         'op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_email_len")',
         'op.drop_constraint("email_len", "users", type_="check")',
         ((_IMPORTS, _IMPORTS.replace("ForeignKey", "CheckConstraint, ForeignKey")),
          ("    id: Mapped[int]", "    " + _CHECK)),
         ('op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_email_len")',),
         ('op.drop_constraint("email_len", "users", type_="check")', "pass")),
    Form("rename_column", "rename_column",
         'op.alter_column("users", "name", new_column_name="display_name",\n'
         "                existing_type=sa.String(100))",
         'op.alter_column("users", "display_name", new_column_name="name")',
         ((_NAME, _NAME.replace("name:", "display_name:")),),
         ('op.add_column("users", sa.Column("display_name", sa.String(100), nullable=True))',
          "UPDATE users SET display_name = name WHERE",
          'op.drop_column("users", "name")'),
         ('op.drop_column("users", "display_name")',
          'op.add_column("users", sa.Column("name", sa.String(100), nullable=True))')),
    Form("rename_table", "rename_table",
         'op.rename_table("notes", "memos")',
         'op.rename_table("memos", "notes")',
         (('__tablename__ = "notes"', '__tablename__ = "memos"\n    __table_args__ = '
           '(PrimaryKeyConstraint("id", name="pk_notes"),)'),
          ('ForeignKey("users.id", ondelete="CASCADE")',
           'ForeignKey("users.id", ondelete="CASCADE", name="fk_notes_user_id_users")'),
          (_IMPORTS, _IMPORTS.replace("MetaData", "MetaData, PrimaryKeyConstraint"))),
         ('op.rename_table("notes", "memos")', 'op.execute("CREATE VIEW notes AS SELECT * FROM '
          'memos")', 'op.execute("DROP VIEW notes")'),
         ('op.execute("DROP VIEW notes")\nop.rename_table("memos", "notes")',
          'op.execute("CREATE VIEW notes AS SELECT * FROM memos")')),
]  # fmt: skip
