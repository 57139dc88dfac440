"""Alembic migrations for the Strata database (run them with ``strata db migrate``)."""
