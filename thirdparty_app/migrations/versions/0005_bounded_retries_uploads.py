"""bounded, visible retries; serialised token renewal; uploads checked and ingested by a worker

Notifications count their download's attempts, say when the next is due and which connection
they concern; connections count their sync's attempts and hold the lease of the worker that
renews their tokens, and are found by their subscription (the webhook asks); uploads are rows
a worker takes up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("retry_at", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("connection_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_notification_connection", "connection", ["connection_id"], ["id"]
        )
        batch.create_index("ix_notification_connection_id", ["connection_id"])
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("refreshing", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_connection_subscription_uri", ["subscription_uri"])
    op.create_table(
        "upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("connection_id", sa.Integer(), sa.ForeignKey("connection.id"), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_upload_account_id", "upload", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_upload_account_id", table_name="upload")
    op.drop_table("upload")
    with op.batch_alter_table("connection") as batch:
        batch.drop_index("ix_connection_subscription_uri")
        batch.drop_column("refreshing")
        batch.drop_column("attempts")
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_connection_id")
        batch.drop_constraint("fk_notification_connection", type_="foreignkey")
        batch.drop_column("connection_id")
        batch.drop_column("retry_at")
        batch.drop_column("attempts")
