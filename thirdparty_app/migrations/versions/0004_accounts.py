"""accounts and API keys; every connection belongs to an account; hrefs unique per connection

Rows stored before accounts existed are given to one account, ``legacy@localhost``, which
cannot sign in (an operator sees its data; ``flask --app thirdparty_app set-password`` can
hand it to someone). Usage points stored without a connection (uploads) get an upload
connection of that account; a reading type shared by several connections is copied to each.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Unnamed unique constraints of 0001: PostgreSQL named them <table>_<column>_key; on SQLite the
# batch copy reflects them under this naming convention.
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PER_CONNECTION = {
    "usage_point": ("connection_id", "href"),
    "reading_type": ("connection_id", "href"),
    "customer_info": ("connection_id", "href"),
    "meter_reading": ("usage_point_id", "href"),
}


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("last_login", sa.Integer(), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email", name="uq_account_email"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("last_used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_hash"),
    )
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        for name in ("customer_name", "account_number", "service_address"):
            batch.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("reading_type") as batch:
        batch.add_column(sa.Column("connection_id", sa.Integer(), nullable=True))
    dialect = op.get_bind().dialect.name
    for table in PER_CONNECTION:
        old = f"{table}_href_key" if dialect == "postgresql" else f"uq_{table}_href"
        with op.batch_alter_table(table, naming_convention=CONVENTION) as batch:
            batch.drop_constraint(old, type_="unique")
    adopt_legacy_rows(op.get_bind())
    for table, columns in PER_CONNECTION.items():
        with op.batch_alter_table(table) as batch:
            batch.create_unique_constraint(f"uq_{table}_href", list(columns))
            if table != "meter_reading":
                batch.alter_column("connection_id", existing_type=sa.Integer(), nullable=False)
            if table == "reading_type":
                batch.create_foreign_key(
                    "fk_reading_type_connection", "connection", ["connection_id"], ["id"]
                )
    # ids never given twice (a job queued for a deleted connection never meets a new one)
    with op.batch_alter_table(
        "connection",
        recreate="always" if dialect == "sqlite" else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_connection_account", "account", ["account_id"], ["id"])
        batch.create_index("ix_connection_account_id", ["account_id"])


def adopt_legacy_rows(bind: sa.engine.Connection) -> None:
    """Give rows stored before accounts an owner (see the module's docstring)."""
    orphans = bind.execute(
        sa.text("SELECT count(*) FROM usage_point WHERE connection_id IS NULL")
    ).scalar()
    customers = bind.execute(sa.text("SELECT count(*) FROM customer_info")).scalar()
    connections = bind.execute(sa.text("SELECT count(*) FROM connection")).scalar()
    if not (orphans or connections or customers):
        bind.execute(sa.text("DELETE FROM reading_type"))  # no meter reading can use one
        return
    now = int(time.time())
    bind.execute(
        sa.text(
            "INSERT INTO account (email, name, role, created, last_login, session_key) "
            "VALUES ('legacy@localhost', 'Data stored before accounts', 'customer', :now, 0, :key)"
        ),
        {"now": now, "key": secrets.token_hex(16)},
    )
    legacy = bind.execute(
        sa.text("SELECT id FROM account WHERE email = 'legacy@localhost'")
    ).scalar()
    bind.execute(sa.text("UPDATE connection SET account_id = :a"), {"a": legacy})
    if (
        orphans
        or bind.execute(
            sa.text("SELECT count(*) FROM customer_info WHERE connection_id IS NULL")
        ).scalar()
    ):
        bind.execute(
            sa.text(
                "INSERT INTO connection (account_id, profile, label, expires_at, scope, status,"
                " reason, created, last_sync, pending, customer_name, account_number,"
                " service_address) VALUES (:a, 'upload', 'stored before accounts', 0, '',"
                " 'active', '', :now, :now, '', '', '', '')"
            ),
            {"a": legacy, "now": now},
        )
        holder = bind.execute(
            sa.text("SELECT max(id) FROM connection WHERE profile = 'upload'")
        ).scalar()
        for table in ("usage_point", "customer_info"):
            bind.execute(
                sa.text(f"UPDATE {table} SET connection_id = :c WHERE connection_id IS NULL"),  # noqa: S608 - fixed names
                {"c": holder},
            )
        bind.execute(
            sa.text(
                "UPDATE document SET connection_id = :c"
                " WHERE connection_id IS NULL AND uri LIKE 'upload:%'"
            ),
            {"c": holder},
        )
    copy_reading_types(bind)


def copy_reading_types(bind: sa.engine.Connection) -> None:
    """A reading type belongs to the connection of the meter readings that use it; one used by
    several connections is copied, one per connection; an unused one is dropped."""
    uses = bind.execute(
        sa.text(
            "SELECT DISTINCT mr.reading_type_id, up.connection_id FROM meter_reading mr"
            " JOIN usage_point up ON up.id = mr.usage_point_id"
            " WHERE mr.reading_type_id IS NOT NULL ORDER BY 1, 2"
        )
    ).all()
    owned: set[int] = set()
    columns = "href, uom, power_of_ten, interval_length, flow_direction, kind, currency"
    for rt_id, conn_id in uses:
        if rt_id not in owned:
            owned.add(rt_id)
            bind.execute(
                sa.text("UPDATE reading_type SET connection_id = :c WHERE id = :r"),
                {"c": conn_id, "r": rt_id},
            )
            continue
        bind.execute(
            sa.text(
                f"INSERT INTO reading_type ({columns}, connection_id)"  # noqa: S608 - fixed names
                f" SELECT {columns}, :c FROM reading_type WHERE id = :r"
            ),
            {"c": conn_id, "r": rt_id},
        )
        copy = bind.execute(sa.text("SELECT max(id) FROM reading_type")).scalar()
        bind.execute(
            sa.text(
                "UPDATE meter_reading SET reading_type_id = :copy WHERE reading_type_id = :r"
                " AND usage_point_id IN (SELECT id FROM usage_point WHERE connection_id = :c)"
            ),
            {"copy": copy, "r": rt_id, "c": conn_id},
        )
    bind.execute(sa.text("DELETE FROM reading_type WHERE connection_id IS NULL"))


def downgrade() -> None:
    raise NotImplementedError("accounts cannot be taken out again without losing who owns what")
