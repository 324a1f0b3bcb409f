"""Retention: how long each kind of data is kept, the purges, and erasure on request."""
