"""Alembic, driven from the app: ``upgrade(app)`` brings the database to the newest schema."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from flask import Flask

HERE = os.path.dirname(os.path.abspath(__file__))


def config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(app: Flask) -> None:
    command.upgrade(config(app.config["DATABASE_URL"]), "head")
