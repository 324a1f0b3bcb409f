"""/users: profiles, addresses, permissions and user administration."""
