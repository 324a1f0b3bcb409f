"""/settings, /security-events and /api-keys: the administrators' endpoints."""
