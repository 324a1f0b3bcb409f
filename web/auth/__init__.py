"""Registration and email verification."""
