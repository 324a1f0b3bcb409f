"""The security log and the shop's runtime settings."""
