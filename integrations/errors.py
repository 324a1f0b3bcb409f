"""The two kinds of vendor failure every adapter maps its errors to."""


class IntegrationError(Exception):
    """A vendor call failed."""


class TransientError(IntegrationError):
    """Worth retrying later: timeouts, connection errors, 429 and 5xx answers."""


class PermanentError(IntegrationError):
    """Retrying cannot help (a rejected request, bad credentials): give up and tell someone."""
