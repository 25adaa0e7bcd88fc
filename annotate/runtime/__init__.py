"""Plumbing every layer uses: atomic writes, JSON-ready records, user errors, the CLI runner,
output capture into log files, MLflow tracking and study records."""
