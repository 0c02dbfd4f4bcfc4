"""``vsr batch INPUT... --out-dir DIR``: enhance many files, idempotently, with isolated workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vsr.cli.options import enhance_config, enhance_options, option
from vsr.errors import EXIT_PARTIAL
from vsr.pipelines.batch.config import ENGINES, HASH_MODES


@click.command(context_settings={"max_content_width": 100})
@click.argument("inputs", metavar="INPUT...", nargs=-1)
@option(
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where outputs go (the input's relative path is kept), with their sidecars and ledger.jsonl.",
)
@option(
    "--suffix", default="_x{scale}", show_default=True, help="Added to each output name ({scale}, {model})."
)
@option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A .txt (paths), .csv or .jsonl (input, output, scale, mode, model, codec, crf) list of files.",
)
@option("--recursive", "-r", is_flag=True, help="Include subfolders of folder INPUTs.")
@option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes. [default: one per GPU, else 1]",
)
@option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds per file (from when a worker starts it) before the worker is killed. [default: none]",
)
@option(
    "--retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Retries for transient failures (out of memory, a worker that died).",
)
@option(
    "--hash",
    "hash_mode",
    type=click.Choice(HASH_MODES),
    default="quick",
    show_default=True,
    help="Input identity: quick = size, mtime and sha256 of the first and last MiB; full = sha256 of the file.",
)
@option("--dry-run", is_flag=True, help="Print the plan (what would run, what is done) and stop.")
@option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the batch report (JSON) here.",
)
@option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local worker processes or a Ray cluster.",
)
@option("--ray-address", default=None, help="Ray: cluster address or 'auto'. [default: start a local Ray]")
@option(
    "--gpus-per-job",
    type=click.FloatRange(min=0),
    default=None,
    help="Ray: GPUs per worker. [default: 1 when GPUs are visible, else 0]",
)
@option(
    "--cpus-per-job",
    type=int,
    default=None,
    help="Ray: CPUs per worker, which sizes its threads. [default: 1; with GPUs, the node's CPUs per GPU]",
)
@enhance_options(report=False)
def batch(
    inputs: tuple[str, ...],
    out_dir: Path,
    suffix,
    manifest,
    recursive,
    workers,
    timeout,
    retries,
    hash_mode,
    dry_run,
    report,
    engine,
    ray_address,
    gpus_per_job,
    cpus_per_job,
    **params: Any,
) -> None:
    """Enhance every INPUT (files, folders, globs) or --manifest row into --out-dir.

    Every 'vsr enhance' option is the default for all files. A re-run skips files already done (same
    input, options and model; output still valid) and redoes changed ones. Exit code 0: all done or
    skipped; 3: some files failed (listed); 1: the batch could not run; 2: usage.
    """
    from vsr.pipelines.batch import BatchConfig, run_batch

    config = BatchConfig(
        inputs=list(inputs),
        out_dir=out_dir,
        defaults=enhance_config(Path(), Path(), params),
        suffix=suffix,
        manifest=manifest,
        recursive=recursive,
        workers=workers,
        timeout=timeout,
        retries=retries,
        hash=hash_mode,
        dry_run=dry_run,
        report=report,
        engine=engine,
        ray_address=ray_address,
        gpus_per_job=gpus_per_job,
        cpus_per_job=cpus_per_job,
    )
    result = run_batch(config)
    if dry_run:
        for f in result.files:
            click.echo(f"{f.status}\t{f.reason}\t{f.input}\t-> {f.output}")
        click.echo(f"vsr: dry run: {result.summary()}", err=True)
        return
    if params["verbose"]:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    if not params["quiet"]:
        if result.count("skipped") == len(result.files):
            click.echo(f"vsr: nothing to do: all {len(result.files)} file(s) are already done", err=True)
        else:
            click.echo(f"vsr: batch: {result.summary()}", err=True)
        for d in result.duplicates:
            click.echo(f"vsr: note: {d}", err=True)
    for f in result.failed:
        click.echo(f"vsr: {f.status}: {f.input}: {f.error_class}: {f.error}", err=True)
    if result.failed:
        raise click.exceptions.Exit(EXIT_PARTIAL)
