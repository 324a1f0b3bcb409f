"""`flask retention purge [--only KIND] [--dry-run]`, `flask retention status` and `flask retention erase ID…`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from imports.retention import StoredFiles
from models.retention.erasure import anonymise
from models.retention.purges import KINDS, Periods, pending, purge, status
from web.extensions import runtime

retention_cli = AppGroup("retention", help="Retention purges (docs/retention.md).")


@retention_cli.command("purge")
@click.option("--only", "only", type=click.Choice(list(KINDS)), multiple=True,
              help="purge only this kind (repeatable); default: every kind")
@click.option("--dry-run", is_flag=True, help="print what would be removed, remove nothing")
@click.option("--chunk", type=click.IntRange(1, 100000), default=None,
              help="rows per transaction (default RETENTION_CHUNK)")
def purge_command(only, dry_run, chunk):
    """Remove every expired row now, in short chunks; safe to interrupt and run again."""
    rt = runtime()
    periods = Periods.from_settings(rt.settings)
    for kind in only or KINDS:
        if dry_run:
            click.echo(f"{kind}: would remove {pending(rt.db, periods, kind)} ({KINDS[kind].what}, "
                       f"kept {_period(getattr(periods, kind))})")
            continue
        files = StoredFiles(rt.settings)
        try:
            outcome = purge(rt.db, periods, kind, chunk=chunk or rt.settings.RETENTION_CHUNK,
                            pause_ratio=rt.settings.RETENTION_PAUSE_RATIO, files=files)
        finally:
            files.close()
        click.echo(f"{kind}: removed {outcome.removed}")


def _period(keep) -> str:
    if keep.seconds:
        return f"{int(keep.total_seconds())} s"
    return "1 day" if keep.days == 1 else f"{keep.days} days"


@retention_cli.command("status")
def status_command():
    """Per kind: how long it is kept, what is due now, what was removed so far, and the last run."""
    rt = runtime()
    click.echo(f"{'kind':<18} {'kept for':<20} {'due now':>9} {'removed':>10}  last run (UTC)")
    for row in status(rt.db, Periods.from_settings(rt.settings)):
        last = row["last_run_at"].strftime("%Y-%m-%d %H:%M:%S") if row["last_run_at"] else "never"
        kept = _period(row["keep"])
        click.echo(f"{row['kind']:<18} {kept:<20} {row['pending']:>9} {row['purged_total']:>10}  {last}")


@retention_cli.command("erase")
@click.argument("user_ids", nargs=-1, required=True, type=click.UUID)
def erase_command(user_ids):
    """Anonymise these accounts now (after a restore to an earlier point, replay the erasures made since)."""
    rt = runtime()
    for user_id in user_ids:
        with rt.db.session() as session:
            done = anonymise(session, user_id, reason="replay")
        click.echo(f"{user_id}: {'erased' if done else 'nothing to erase (unknown or erased before)'}")
