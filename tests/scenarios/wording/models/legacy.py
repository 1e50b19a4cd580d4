"""A declarative model in its own module: dropping its import must not read as a dropped table."""
from sqlalchemy import Identity
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class LegacyImport(Base):
    __tablename__ = "legacy_imports"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
