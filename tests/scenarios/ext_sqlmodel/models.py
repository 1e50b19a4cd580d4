from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import CITEXT
from sqlmodel import Field, SQLModel


class Hero(SQLModel, table=True):
    __tablename__ = "heroes"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    email: str = Field(sa_column=Column(CITEXT(), nullable=False, unique=True))
    age: int | None = None


metadata = SQLModel.metadata
