"""`flask orders verify-events`: does every order's status follow from its history?"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from models.orders.history import disagreements
from models.orders.machine import legal
from web.extensions import db

orders_cli = AppGroup("orders", help="Orders.")


@orders_cli.command("verify-events")
def verify_events():
    """Replay each order's events and report the orders whose stored status disagrees."""
    with db().session() as session:
        found = disagreements(session, legal)
        for order, problem in found:
            click.echo(f"{order.id}: {problem}", err=True)
    if found:
        sys.exit(1)
    click.echo("every order's status agrees with its events")
