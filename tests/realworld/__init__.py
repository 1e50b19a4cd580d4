"""Real projects from the package index, each in its own pinned venv (issue 17, part 4).

Per project: the checker on the clean upstream (exactly the hand-checked drift, then exit 0
once that drift is baselined) and model-only mutations (exit 1 naming each), with the truth
from plain Alembic (alembic_truth.py) run by the project's own interpreter. The projects, each
of another shape: optuna (a wheel's alembic.ini, drift baselined), keystone (OpenStack on
oslo.db: expand/contract heads, version_locations, include_object by table and columns) and
apache-airflow-core (124 revisions, env.py on its own setting and the handed connection,
compare_type/compare_server_default callables, psycopg2). The venvs are installed with
``--link-mode copy``: a mutation edits an installed module in place.

Evaluated and not (yet) here, because their history does not build a database from empty
(the upstream creates new databases with create_all() and stamps them): mlflow-skinny 3.17.2
(revision 451aebb31d03 fails, relation "metrics" does not exist; its env.py also imports only
the declarative Base, so plain Alembic sees empty metadata unless the dbmodels modules are
imported first), jupyterhub 6.1.1 (base revision 19c0846f6344 is empty) and buildbot 4.3.0
(its first Alembic revision, 059, is empty). They need --start-from with a dump of the base
schema.
"""
