"""The models: no server default where a revision backfilled one, a UNIQUE's columns in
another order than the revision's."""
from sqlalchemy import MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("team", "email", name="uq_members_team_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(10))
