"""Backups: the jobs that take, check, drill and restore them, and the record of every run."""
