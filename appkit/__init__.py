"""What the two Flask apps share: a SQLAlchemy session per app context, Alembic upgrades."""
