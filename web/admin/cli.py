"""`flask queues dead list|show|replay|drop`: dead letters from the shell (as the system, audited)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from flask.cli import AppGroup

import celeryconfig
from models.errors import NotFound
from models.operations.dead_letters import DeadLetterView
from models.users.permissions import SYSTEM
from web.admin.dead_letters import dead_letters

QUEUE = click.Choice(celeryconfig.QUEUES)


def _line(letter: DeadLetterView) -> str:
    died = letter.last_death_at.isoformat(timespec="seconds") if letter.last_death_at else "?"
    return (f"{letter.id}  {letter.queue:<11} {letter.task}  deaths={letter.death_count}  last={died}  "
            f"{letter.error or letter.reason}")


def _detail(letter: DeadLetterView) -> str:
    fields = {**letter.__dict__}
    for key in ("first_death_at", "last_death_at"):
        fields[key] = fields[key].isoformat() if fields[key] else None
    return json.dumps(fields, indent=2, default=str)


def register(app: Flask) -> None:
    queues = AppGroup("queues", help="The task queues.")
    dead = AppGroup("dead", help="Dead letters: tasks that failed for good.")
    queues.add_command(dead)

    def run(operation, *args, **kwargs):
        try:
            return operation(SYSTEM, *args, **kwargs)
        except NotFound as exc:
            click.echo(exc.message, err=True)
            sys.exit(1)

    @dead.command("list")
    @click.option("--queue", type=QUEUE, help="only this queue's dead letters")
    @click.option("--limit", default=100, show_default=True)
    def list_(queue, limit):
        """One line per dead letter: task id, queue, task, deaths, last death, error."""
        letters = run(dead_letters().list, queue, limit)
        for letter in letters:
            click.echo(_line(letter))
        click.echo(f"{len(letters)} dead letter(s)", err=True)

    @dead.command("show")
    @click.argument("task_id")
    def show(task_id):
        """Everything about one dead letter (arguments with personal data masked)."""
        click.echo(_detail(run(dead_letters().show, task_id)))

    @dead.command("replay")
    @click.argument("task_id", required=False)
    @click.option("--all", "replay_all", is_flag=True, help="replay every dead letter (of --queue)")
    @click.option("--queue", type=QUEUE)
    @click.option("--rate", type=click.FloatRange(min=0.01), help="at most this many per second")
    def replay(task_id, replay_all, queue, rate):
        """Send TASK_ID (or --all) back to its queue under the same task id."""
        if bool(task_id) == replay_all:
            raise click.UsageError("give a TASK_ID or --all, not both")
        if task_id:
            click.echo(f"replayed {_line(run(dead_letters().replay, task_id))}")
            return
        letters = run(dead_letters().replay_all, queue, rate)
        for letter in letters:
            click.echo(f"replayed {_line(letter)}")
        click.echo(f"{len(letters)} replayed", err=True)

    @dead.command("drop")
    @click.argument("task_id")
    def drop(task_id):
        """Delete one dead letter for good."""
        click.echo(f"dropped {_line(run(dead_letters().drop, task_id))}")

    app.cli.add_command(queues)
