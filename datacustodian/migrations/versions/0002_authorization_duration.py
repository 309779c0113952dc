"""an authorization's duration as a 64-bit integer

Its default, 2**32 - 1 (ESPI's UInt32 "until revoked"), does not fit PostgreSQL's integer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("espi_authorization") as batch:
        batch.alter_column("duration", existing_type=sa.Integer(), type_=sa.BigInteger())


def downgrade() -> None:
    with op.batch_alter_table("espi_authorization") as batch:
        batch.alter_column("duration", existing_type=sa.BigInteger(), type_=sa.Integer())
