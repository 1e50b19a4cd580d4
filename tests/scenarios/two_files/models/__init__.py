"""Every model module is imported here, or its tables would read as removed."""
from models.base import Base, metadata
from models.notes import Note
from models.users import User

__all__ = ["Base", "Note", "User", "metadata"]
