"""The worker interpreter: runs the project's env.py, models and revisions (SQLAlchemy, Alembic).

In: the request on stdin. Out: JSON events and the result on its event pipe (protocol).
"""
