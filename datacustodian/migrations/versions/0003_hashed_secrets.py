"""client secrets, codes and tokens kept as SHA-256 hashes

Existing rows are hashed in place: every credential issued before keeps working.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: table: (old plain-text column, new hash column, new column nullable)
COLUMNS = {
    "client": [("client_secret", "secret_hash", False)],
    "auth_code": [("code", "code_hash", False)],
    "token": [("access_token", "access_hash", False), ("refresh_token", "refresh_hash", True)],
}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for _, new, _ in columns:
                batch.add_column(sa.Column(new, sa.String(length=64), nullable=True))
    connection = op.get_bind()
    for table, columns in COLUMNS.items():
        t = sa.table(table, sa.column("id"), *(sa.column(c) for pair in columns for c in pair[:2]))
        for row in connection.execute(sa.select(t)).mappings().all():
            hashed = {new: digest(row[old]) for old, new, _ in columns if row[old] is not None}
            if hashed:
                connection.execute(sa.update(t).where(t.c.id == row["id"]).values(**hashed))
    with op.batch_alter_table("token") as batch:
        batch.drop_index("ix_token_refresh_token")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for old, new, nullable in columns:
                batch.drop_column(old)
                batch.alter_column(new, existing_type=sa.String(length=64), nullable=nullable)
    with op.batch_alter_table("auth_code") as batch:
        batch.create_unique_constraint("uq_auth_code_code_hash", ["code_hash"])
    with op.batch_alter_table("token") as batch:
        batch.create_unique_constraint("uq_token_access_hash", ["access_hash"])
        batch.create_index("ix_token_refresh_hash", ["refresh_hash"], unique=False)


def downgrade() -> None:
    raise RuntimeError(
        "0003 cannot be undone: secrets, codes and tokens are kept only as hashes; "
        "restore a backup taken before the upgrade instead"
    )
