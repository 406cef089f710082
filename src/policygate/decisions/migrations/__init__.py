"""Alembic migrations of the decision log, shipped inside the package so an installed policygate has them."""
