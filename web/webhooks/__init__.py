"""Payment provider webhooks."""
