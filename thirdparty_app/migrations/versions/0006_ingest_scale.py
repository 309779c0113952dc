"""readings keyed with seq (two readings at one start are both kept), value NULL when missing;
block digests; bills and their line items as rows; what each document did

- ``reading``: ``seq`` joins the key, ``value`` may be NULL, the index on ``start`` alone goes
  (see ``db.Reading``); on SQLite the table is rebuilt ``WITHOUT ROWID`` (one b-tree to write
  per reading instead of two);
- ``reading_block``: the digest of what each ingested IntervalBlock wrote;
- ``bill`` and ``bill_line_item`` replace ``usage_summary``, whose XML is read once here;
- ``document``: readings written, duplicates, refused usage points, rows stamped, notes;
  ``usage_point``, ``reading_type``, ``customer_info``: the document that last wrote them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

READING_COLUMNS = "meter_reading_id, start, duration, value, cost, quality, tou"


def upgrade() -> None:
    readings()
    op.create_table(
        "reading_block",
        sa.Column("meter_reading_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("stop", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
        sa.ForeignKeyConstraint(["meter_reading_id"], ["meter_reading.id"]),
        sa.PrimaryKeyConstraint("meter_reading_id", "start"),
    )
    op.create_index("ix_reading_block_stop", "reading_block", ["meter_reading_id", "stop"])
    bills()
    with op.batch_alter_table("document") as batch:
        for name in ("written", "duplicates", "refused", "stamped"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
    for table in ("usage_point", "reading_type", "customer_info"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("document_id", sa.Integer(), nullable=True))
            batch.create_index(f"ix_{table}_document_id", ["document_id"])


def readings() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "reading_new",
            sa.Column("meter_reading_id", sa.Integer(), nullable=False),
            sa.Column("start", sa.BigInteger(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("duration", sa.Integer(), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=True),
            sa.Column("cost", sa.BigInteger(), nullable=True),
            sa.Column("quality", sa.Integer(), nullable=True),
            sa.Column("tou", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["meter_reading_id"], ["meter_reading.id"]),
            sa.PrimaryKeyConstraint("meter_reading_id", "start", "seq"),
            sqlite_with_rowid=False,
        )
        op.execute(
            f"INSERT INTO reading_new ({READING_COLUMNS}) SELECT {READING_COLUMNS} FROM reading"  # noqa: S608 - fixed names
        )
        op.drop_index("ix_reading_start", table_name="reading")
        op.drop_table("reading")
        op.rename_table("reading_new", "reading")
    else:
        op.drop_index("ix_reading_start", table_name="reading")
        op.add_column("reading", sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
        op.alter_column("reading", "value", existing_type=sa.BigInteger(), nullable=True)
        op.drop_constraint("reading_pkey", "reading", type_="primary")
        op.create_primary_key("reading_pkey", "reading", ["meter_reading_id", "start", "seq"])
    op.create_index(
        "ix_reading_duplicate",
        "reading",
        ["meter_reading_id", "start"],
        sqlite_where=sa.text("seq > 0"),
        postgresql_where=sa.text("seq > 0"),
    )


def bills() -> None:
    op.create_table(
        "bill",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("to_date", sa.BigInteger(), nullable=True),
        sa.Column("additional", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.Integer(), nullable=True),
        sa.Column("consumption", sa.BigInteger(), nullable=True),
        sa.Column("consumption_uom", sa.Integer(), nullable=True),
        sa.Column("consumption_power_of_ten", sa.Integer(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("status_time", sa.BigInteger(), nullable=True),
        sa.Column("commodity", sa.Integer(), nullable=True),
        sa.Column("tariff_profile", sa.Text(), nullable=False),
        sa.Column("read_cycle", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["usage_point_id"], ["usage_point.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("usage_point_id", "start", name="uq_bill_period"),
    )
    op.create_table(
        "bill_line_item",
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("rounding", sa.BigInteger(), nullable=True),
        sa.Column("date_time", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.Integer(), nullable=True),
        sa.Column("unit_cost", sa.BigInteger(), nullable=True),
        sa.Column("period_start", sa.BigInteger(), nullable=True),
        sa.Column("period_duration", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=True),
        sa.Column("quantity_uom", sa.Integer(), nullable=True),
        sa.Column("quantity_power_of_ten", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["bill_id"], ["bill.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bill_id", "position"),
    )
    copy_usage_summaries(op.get_bind())
    op.drop_table("usage_summary")


def copy_usage_summaries(bind: sa.engine.Connection) -> None:
    """Each stored UsageSummary's XML, read once, as a bill row and its line items; XML that
    does not read keeps what its row's columns said (period, amount, currency, consumption)."""
    import espi
    from thirdparty_app.rows import bill_columns

    meta = sa.MetaData()
    bill = sa.Table("bill", meta, autoload_with=bind)
    line_item = sa.Table("bill_line_item", meta, autoload_with=bind)
    stored = bind.execute(
        sa.text(
            "SELECT usage_point_id, start, duration, bill, currency, consumption, xml"
            " FROM usage_summary ORDER BY id"
        )
    )
    for up_id, start, duration, amount, currency, consumption, xml in stored.all():
        try:
            found = [bill_columns(s) for s in espi.parse(xml.encode()).usage_summaries]
        except espi.ParseError as err:
            logging.getLogger("alembic").warning("usage point %s: a bill's XML: %s", up_id, err)
            found = []
        if not found:
            columns = {"start": start, "duration": duration, "amount": amount,
                       "currency": currency, "consumption": consumption,
                       "tariff_profile": "", "read_cycle": ""}  # fmt: skip
            found = [(columns, [])]
        for columns, items in found:
            bill_id = bind.execute(
                bill.insert().values(usage_point_id=up_id, **columns).returning(bill.c.id)
            ).scalar_one()
            if items:
                bind.execute(line_item.insert(), [{"bill_id": bill_id, **li} for li in items])


def downgrade() -> None:
    raise NotImplementedError(
        "readings given twice at one start (seq > 0) and NULL values do not fit the old key"
    )
