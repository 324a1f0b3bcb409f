"""Orders, their lines, address snapshots and event history."""
