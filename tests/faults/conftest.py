"""The fault suite reuses the order flows' fixtures."""

from tests.orders.conftest import make_variant, people  # noqa: F401  (fixtures)


def pytest_terminal_summary(terminalreporter):
    """The fault table: what each fault lost, doubled or left stuck (all zeros when the suite passes)."""
    from tests.faults.ledger import TALLIES, table

    if TALLIES:
        terminalreporter.write_sep("=", "faults: lost, doubled or stuck")
        terminalreporter.write_line(table(TALLIES))
