"""Users: accounts, addresses and their one-time tokens."""
