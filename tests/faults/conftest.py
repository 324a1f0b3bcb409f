"""The fault suite reuses the order flows' fixtures."""

from tests.orders.conftest import make_variant, people, settle_workers  # noqa: F401  (fixtures)
