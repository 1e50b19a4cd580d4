"""An env.py that ignores DATABASE_URL and sqlalchemy.url and connects to a "real" database.

FOREIGN_URL names the target (a SQLAlchemy URL); FOREIGN_MODE picks how env.py connects, each a
shape seen in real projects: a SQLAlchemy engine (sync or async), a raw driver connection
outside SQLAlchemy, or a SQLite file under $HOME. Every mode writes before it migrates, so a
guard that lets the connection through changes the real database.
"""
import asyncio
import os

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from models import metadata

config = context.config
target_metadata = metadata
MODE = os.environ["FOREIGN_MODE"]
URL = os.environ["FOREIGN_URL"]
RAW = URL.replace("postgresql+psycopg://", "postgresql://")
WRITE = "CREATE TABLE hijacked (id int); INSERT INTO hijacked VALUES (1)"


def migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if MODE == "engine":
        with create_engine(URL, poolclass=pool.NullPool).connect() as conn:
            conn.execute(text("CREATE TABLE hijacked (id int)"))
            migrate(conn)
    elif MODE == "async_engine":
        async def main() -> None:
            engine = create_async_engine(
                URL.replace("+psycopg", "+asyncpg"), poolclass=pool.NullPool
            )
            async with engine.connect() as conn:
                await conn.execute(text("CREATE TABLE hijacked (id int)"))
                await conn.run_sync(migrate)
            await engine.dispose()
        asyncio.run(main())
    elif MODE == "psycopg":
        import psycopg
        with psycopg.connect(RAW, autocommit=True) as raw:
            raw.execute(WRITE)
    elif MODE == "psycopg_kwargs":
        import psycopg
        from urllib.parse import urlsplit
        parts = urlsplit(RAW)
        with psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username,
                             password=parts.password, dbname=parts.path[1:],
                             autocommit=True) as raw:
            raw.execute(WRITE)
    elif MODE == "psycopg2":
        import psycopg2
        raw = psycopg2.connect(RAW)
        raw.autocommit = True
        raw.cursor().execute(WRITE)
    elif MODE == "asyncpg":
        import asyncpg

        async def main() -> None:
            raw = await asyncpg.connect(RAW)
            await raw.execute(WRITE)
            await raw.close()
        asyncio.run(main())
    elif MODE == "swallowed":
        # Catches the refusal and carries on against the handed connection.
        try:
            create_engine(URL, poolclass=pool.NullPool).connect()
        except Exception:
            pass
    elif MODE == "sqlite":
        home_db = os.path.join(os.environ["HOME"], "app.sqlite3")
        with create_engine(f"sqlite:///{home_db}").connect() as conn:
            conn.execute(text("CREATE TABLE hijacked (id int)"))
            conn.commit()
            migrate(conn)
        return
    migrate(config.attributes["connection"])


run()
