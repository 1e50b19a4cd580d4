"""Models that use types and a function only the revisions create: create_all() alone fails."""
import datetime

from sqlalchemy import DateTime, MetaData, String, text
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class PositiveInt(UserDefinedType[int]):
    """The domain ``positive_int``, created by revision 0001."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "positive_int"


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    mood: Mapped[str] = mapped_column(ENUM(name="mood", create_type=False))
    seats: Mapped[int] = mapped_column(PositiveInt())
    code: Mapped[str] = mapped_column(String(20), server_default=text("next_code()"))
    # The revision says now(): the same value, so no finding (PostgreSQL compares the two).
    opened_at: Mapped[datetime.datetime] = mapped_column(
        DateTime, server_default=text("CURRENT_TIMESTAMP")
    )
