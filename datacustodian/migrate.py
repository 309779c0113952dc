"""Alembic, driven from the app: ``upgrade(app)`` brings the database to the newest schema."""

from __future__ import annotations

import os

from flask import Flask

from appkit import database

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def upgrade(app: Flask) -> None:
    database.upgrade(app, MIGRATIONS)
