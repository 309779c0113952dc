"""provider connections and rate-plan pricing: a usage point's WattShift home, readings' TOU

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pricing",
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("home_id", sa.String(length=200), nullable=False),
        sa.Column("rate_plan", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priced", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["usage_point_id"], ["usage_point.id"]),
        sa.PrimaryKeyConstraint("usage_point_id"),
    )
    with op.batch_alter_table("reading") as batch:
        batch.add_column(sa.Column("tou", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reading") as batch:
        batch.drop_column("tou")
    op.drop_table("pricing")
