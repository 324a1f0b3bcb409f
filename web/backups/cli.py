"""`flask backups run|list|verify|restore|check|drill|setup`: pgBackRest from the project's settings.

Progress goes to stderr as pgBackRest reports it; results to stdout. Exit codes:
0 done, 1 failed, 2 refused (bad input), 3 repository unreachable,
4 verify found damaged files, 75 another backup job is running (nothing done).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from integrations.backups import BackupError, RepoDamaged, RepoUnreachable
from models.backups import jobs
from web.extensions import runtime

OK, FAILED, REFUSED, UNREACHABLE, DAMAGED, BUSY = 0, 1, 2, 3, 4, 75


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _run(body) -> None:
    """Run `body`, turning each kind of failure into its message and exit code."""
    try:
        body()
    except jobs.JobBusy as exc:
        click.echo(f"skipped: {exc}", err=True)
        sys.exit(BUSY)
    except jobs.Refused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(REFUSED)
    except RepoUnreachable as exc:
        click.echo(f"repository unreachable: {exc}", err=True)
        sys.exit(UNREACHABLE)
    except RepoDamaged as exc:
        click.echo(f"damaged: {exc}", err=True)
        sys.exit(DAMAGED)
    except BackupError as exc:
        click.echo(f"failed: {exc}", err=True)
        sys.exit(FAILED)


def register(app: Flask) -> None:
    group = AppGroup("backups", help="PostgreSQL backups with pgBackRest (see docs/backups.md).")

    @group.command("run")
    @click.option("--type", "kind", type=click.Choice(["full", "diff"]), default="full", show_default=True)
    def run(kind: str):
        """Take a backup now, then verify the repository."""
        def body():
            rt = runtime()
            outcome = jobs.run_backup(rt.db, rt.settings, kind, _progress)
            click.echo(f"{kind} backup {outcome.backup_label} done: {outcome.detail['size']} bytes of database, "
                       f"{outcome.detail['repo_size']} bytes in the repository, verified")
        _run(body)

    @group.command("list")
    def list_():
        """The backups in the repository and the window a restore can reach."""
        def body():
            info = jobs.make_tool(runtime().settings).info()
            click.echo(f"{'label':<26}{'type':<6}{'started (UTC)':<21}{'stopped (UTC)':<21}{'db bytes':>14}"
                       f"{'repo bytes':>14}")
            for b in info.backups:
                click.echo(f"{b.label:<26}{b.type:<6}{b.started_at:%Y-%m-%d %H:%M:%S}  "
                           f"{b.stopped_at:%Y-%m-%d %H:%M:%S}  {b.size:>14}{b.repo_size:>14}")
            if info.backups:
                start, end = jobs.recoverable_window(info)
                click.echo(f"recoverable window: {start.isoformat()} .. {end.isoformat(timespec='seconds')}"
                           f" (WAL {info.archive_min} .. {info.archive_max})")
            else:
                click.echo("no backups yet")
        _run(body)

    @group.command("verify")
    def verify():
        """Read back every backup and WAL file in the repository and check its checksum."""
        def body():
            click.echo(jobs.make_tool(runtime().settings).verify(_progress).strip())
        _run(body)

    @group.command("restore")
    @click.option("--to", "to", help='Point in time with its UTC offset, e.g. "2026-11-30 14:05:00+00:00"; '
                                     "default: as far as the archived WAL goes.")
    @click.option("--target", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Folder to restore into (must be empty unless --force).")
    @click.option("--port", type=int, help="Start the restored server on this port and wait until it is promoted.")
    @click.option("--force", is_flag=True, help="Overwrite a folder that holds data.")
    def restore(to: str | None, target: Path, port: int | None, force: bool):
        """Restore the cluster as it was at --to into --target (WAL archiving off in the copy)."""
        def body():
            cluster = jobs.restore(runtime().settings, target.absolute(), to, port, force, _progress)
            click.echo(f"restored into {target}" + (f", running on port {port}: {cluster.url()}" if port else
                                                    f"; start it with: pg_ctl -D {target} -o '-p PORT' start"))
        _run(body)

    @group.command("check")
    def check_():
        """pgBackRest's check, recorded for /metrics like the beat job's."""
        def body():
            rt = runtime()
            outcome = jobs.check(rt.db, rt.settings)
            click.echo(f"ok: last WAL archived at {outcome.archived_at}, newest backup {outcome.backup_label}")
        _run(body)

    @group.command("drill")
    def drill():
        """Restore the newest backup into a scratch cluster and compare every table with the source."""
        def body():
            rt = runtime()
            outcome = jobs.drill(rt.db, rt.settings, _progress)
            click.echo(f"drill ok: {outcome.detail['tables']} tables, {outcome.detail['rows']} rows identical")
        _run(body)

    @group.command("setup")
    def setup():
        """Write pgBackRest's configuration, create the stanza, and print the PostgreSQL settings it needs."""
        def body():
            tool = jobs.make_tool(runtime().settings)
            click.echo(f"wrote {tool.config_path}")
            click.echo("set on the cluster (ALTER SYSTEM, then restart it):\n  archive_mode = on\n"
                       f"  archive_command = '{tool.archive_command()}'\n  archive_timeout = 60\n"
                       "  wal_level = replica")
            tool.stanza_create()
            click.echo(f"stanza {tool.repo.stanza} is ready")
        _run(body)

    app.cli.add_command(group)
