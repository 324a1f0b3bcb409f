"""Outgoing email: one row per message, sent once by the emails task."""
