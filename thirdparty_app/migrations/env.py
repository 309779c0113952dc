"""Alembic environment: the app's tables, migrated by appkit."""

from appkit.database import run_migrations
from thirdparty_app.db import Base

run_migrations(Base.metadata)
