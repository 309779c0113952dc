"""a provider connection keeps its whole Credentials.extra, sealed (the provider contract)

``connection.extra`` (sealed JSON) replaces ``connection.pending``, which held only WattzOn's
running job ids: those become ``{"jobs": ...}``. Sealing needs the app's ``TOKEN_KEY`` (the
app context's, as ``flask --app thirdparty_app init-db`` runs it, or
``THIRDPARTY_TOKEN_KEY``) only when such a row exists.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import json
import os

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def fernet() -> Fernet:
    from flask import current_app, has_app_context

    key = current_app.config.get("TOKEN_KEY") if has_app_context() else None
    key = key or os.environ.get("THIRDPARTY_TOKEN_KEY")
    if not key:
        raise RuntimeError(
            "migration 0007 seals the running jobs of provider connections: run it with "
            "`flask --app thirdparty_app init-db` or set THIRDPARTY_TOKEN_KEY"
        )
    return Fernet(key)


def upgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("extra", sa.Text(), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, pending FROM connection WHERE pending != ''")).all()
    for conn_id, pending in rows:
        sealed = fernet().encrypt(json.dumps({"jobs": pending}).encode()).decode()
        bind.execute(
            sa.text("UPDATE connection SET extra = :extra WHERE id = :id"),
            {"extra": sealed, "id": conn_id},
        )
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("pending")


def downgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("pending", sa.Text(), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, extra FROM connection WHERE extra != ''")).all()
    for conn_id, extra in rows:
        jobs = json.loads(fernet().decrypt(extra.encode())).get("jobs", "")
        bind.execute(
            sa.text("UPDATE connection SET pending = :jobs WHERE id = :id"),
            {"jobs": jobs, "id": conn_id},
        )
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("extra")
