"""Persistence: SQLAlchemy models, the session factory and repository functions."""
