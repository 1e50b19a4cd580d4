"""``bad_not_from_empty``'s database as production has it, the SQL a ``--start-from`` dump holds.

Its history cannot build from empty (0002 widens a table no revision makes), so the tests of
``--start-from`` and of the caches that cover it load this instead of replaying 0001.
"""

from __future__ import annotations

__all__ = ["PRODUCTION_AT_0001"]

# The database as production has it: 0001's tables, legacy_accounts from create_all() at the
# time (code was VARCHAR(10)), stamped 0001.
PRODUCTION_AT_0001 = """
CREATE TABLE users (
    id SERIAL, email VARCHAR(200) NOT NULL, name VARCHAR(100),
    status VARCHAR(20) DEFAULT 'active' NOT NULL,
    CONSTRAINT pk_users PRIMARY KEY (id), CONSTRAINT uq_users_email UNIQUE (email));
CREATE TABLE notes (
    id SERIAL, user_id INTEGER NOT NULL, body VARCHAR(500) NOT NULL,
    CONSTRAINT pk_notes PRIMARY KEY (id),
    CONSTRAINT fk_notes_user_id_users FOREIGN KEY (user_id) REFERENCES users (id)
        ON DELETE CASCADE);
CREATE TABLE legacy_accounts (
    id SERIAL, code VARCHAR(10), CONSTRAINT pk_legacy_accounts PRIMARY KEY (id));
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version VALUES ('0001');
"""
