"""A Core table in its own module: dropping its import must not read as a dropped table."""
from sqlalchemy import Column, Integer, Table

from models.base import metadata

archive = Table(
    "archive",
    metadata,
    Column("id", Integer, primary_key=True),
)
