"""Backstop: PostgreSQL backups that prove they restore."""
