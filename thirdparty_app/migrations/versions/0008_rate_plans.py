"""several rate plans per usage point, their estimates kept apart from the utility's costs

- ``rate_plan`` replaces ``pricing`` (one plan per usage point): any number of plans each;
- ``plan_cost``: a plan's estimate of each reading (keyed like the reading), where the
  pricing job wrote over the reading's own cost (the utility's) and TOU before. The estimates
  stored so far move there; the readings they overwrote lose that cost (NULL, not an
  estimate shown as the utility's), and their usage points' stamps and block digests go, so
  the next delivery of the same data (or ``flask --app thirdparty_app replay ID --full``)
  writes the utility's costs back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: the readings a plan priced: those of a usage point with a plan, with a TOU period
PRICED = (
    "FROM reading r JOIN meter_reading mr ON mr.id = r.meter_reading_id"
    " JOIN rate_plan p ON p.usage_point_id = mr.usage_point_id"
    " WHERE r.tou IS NOT NULL AND r.cost IS NOT NULL"
)


def upgrade() -> None:
    op.create_table(
        "rate_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("home_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priced", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["usage_point_id"], ["usage_point.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("usage_point_id", "plan", name="uq_rate_plan_plan"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rate_plan_usage_point_id", "rate_plan", ["usage_point_id"])
    op.create_table(
        "plan_cost",
        sa.Column("rate_plan_id", sa.Integer(), nullable=False),
        sa.Column("meter_reading_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("tou", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["rate_plan_id"], ["rate_plan.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["meter_reading_id"], ["meter_reading.id"]),
        sa.PrimaryKeyConstraint("rate_plan_id", "meter_reading_id", "start", "seq"),
        sqlite_with_rowid=False,
    )
    # the plan chosen so far (its provider id was not kept: "")
    op.execute(
        "INSERT INTO rate_plan (usage_point_id, provider, plan, name, home_id, status, reason,"
        " priced, created, updated) SELECT usage_point_id, provider, '', rate_plan, home_id,"
        " status, reason, priced, updated, updated FROM pricing"
    )
    op.execute(
        "INSERT INTO plan_cost (rate_plan_id, meter_reading_id, start, seq, cost, tou)"
        f" SELECT p.id, r.meter_reading_id, r.start, r.seq, r.cost, r.tou {PRICED}"
    )
    priced = (
        "SELECT mr.id FROM meter_reading mr"
        " JOIN rate_plan p ON p.usage_point_id = mr.usage_point_id"
    )
    op.execute(
        f"UPDATE reading SET cost = NULL, tou = NULL WHERE tou IS NOT NULL AND cost IS NOT NULL"  # noqa: S608 - fixed text
        f" AND meter_reading_id IN ({priced})"
    )
    op.execute(f"DELETE FROM reading_block WHERE meter_reading_id IN ({priced})")  # noqa: S608 - fixed text
    op.execute(
        "UPDATE usage_point SET document_id = NULL"
        " WHERE id IN (SELECT usage_point_id FROM rate_plan)"
    )
    op.drop_table("pricing")


def downgrade() -> None:
    """One plan per usage point again (the newest); the estimates are dropped, not written
    over the utility's costs."""
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
    op.execute(
        "INSERT INTO pricing (usage_point_id, provider, home_id, rate_plan, status, reason,"
        " priced, updated) SELECT usage_point_id, provider, home_id, name, 'failed',"
        " 'estimates dropped by a downgrade: choose the plan again', 0, updated FROM rate_plan"
        " WHERE id IN (SELECT max(id) FROM rate_plan GROUP BY usage_point_id)"
    )
    op.drop_table("plan_cost")
    op.drop_index("ix_rate_plan_usage_point_id", table_name="rate_plan")
    op.drop_table("rate_plan")
