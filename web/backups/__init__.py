"""Backups as ops see them: `flask backups …` and the backup figures on /metrics."""
