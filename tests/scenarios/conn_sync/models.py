from sqlalchemy import Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


metadata = Base.metadata


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(100))

    # Built CONCURRENTLY by revision 0002 (inside autocommit_block), as on a live table.
    __table_args__ = (Index("ix_users_email", "email"),)
