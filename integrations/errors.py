"""The two kinds of vendor failure every adapter maps its errors to."""


class IntegrationError(Exception):
    """A vendor call failed.

    `refused` is True when the vendor answered that it did not carry the
    request out (an error status); False when it may have, unknown to us (a
    timeout or a connection cut after the request left).
    """

    def __init__(self, *args, refused: bool = False):
        super().__init__(*args)
        self.refused = refused


class TransientError(IntegrationError):
    """Worth retrying later: timeouts, connection errors, 429 and 5xx answers."""


class PermanentError(IntegrationError):
    """Retrying cannot help (a rejected request, bad credentials): give up and tell someone."""
