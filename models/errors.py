"""Errors raised by domain actions; the web layer maps each to a status code."""


class DomainError(Exception):
    """A rule of the domain refused the action; the message is safe to show."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class Unauthorized(DomainError):
    """The caller is not signed in, or the credentials are not valid."""


class Forbidden(DomainError):
    """The caller is known but may not do this (role, scope or missing MFA)."""


class Conflict(DomainError):
    """The action clashes with the current state (a duplicate, a wrong status)."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not the caller's to see)."""


class InvalidRequest(DomainError):
    """The request is well formed but cannot be honoured (a bad token, say)."""
