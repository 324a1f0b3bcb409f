"""`flask imports run FILE`: import a catalog file in this process, with a progress bar and a summary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from imports import jobs, pipeline
from imports.feed import FORMATS
from imports.reports import error_rows
from models.imports.tables import ImportJob
from models.users.permissions import SYSTEM
from web.extensions import runtime


def register(app: Flask) -> None:
    group = AppGroup("imports", help="Catalog file imports.")

    @group.command("run")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the file's extension.")
    def run(file: Path, fmt: str | None):
        """Import FILE now, as an upload would, without a worker."""
        rt = runtime()
        # One chunk per step, so the bar moves chunk by chunk.
        settings = replace(rt.settings, IMPORT_TASK_SECONDS=0)
        with file.open("rb") as stream:
            job = jobs.start_upload(rt.db, settings, SYSTEM, file.name, stream, fmt)
        job_id = str(job.id)
        pipeline.scan(rt.db, settings, job_id)
        with click.progressbar(length=_job(rt.db, job_id).chunks_total or 0, label=f"importing {file.name}") as bar:
            while _job(rt.db, job_id).status == "running":
                if pipeline.load(rt.db, settings, job_id) != "load_chunks":
                    bar.update(bar.length - bar.pos)
                    break
                bar.update(1)
        pipeline.finish(rt.db, settings, job_id)
        _summary(rt.db, _job(rt.db, job_id))

    app.cli.add_command(group)


def _job(db, job_id: str) -> ImportJob:
    with db.session() as session:
        job = session.get(ImportJob, job_id)
        session.expunge(job)
        return job


def _summary(db, job: ImportJob) -> None:
    rows = [("job", str(job.id)), ("status", job.status), ("format", job.format or "-"),
            ("rows read", job.rows_total or 0), ("rows imported", job.rows_imported),
            ("rows rejected", job.rows_failed)]
    if job.message:
        rows.append(("message", job.message))
    if job.error_report_key:
        rows.append(("report", f"imports/{job.error_report_key} in the object store"))
    width = max(len(name) for name, _ in rows)
    click.echo("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    with db.session() as session:
        first = list(error_rows(session, job.id, 10))
    if first:
        click.echo("\nrow    column          message")
        for row, column, _, message in first:
            click.echo(f"{row:<6} {column:<15} {message}")
    if job.status == "failed":
        raise SystemExit(1)
