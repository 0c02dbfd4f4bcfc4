"""The ``vsr`` command line: a thin click group.

Each command lives in its own module and is imported only when it runs, so
``vsr --help`` and ``vsr probe`` never import torch.  Commands parse options,
build a config and call one library function.  This is the only place where
``VsrError``s become exit codes (0 ok, 1 failure, 2 usage, 3 batch partly
failed, 130 interrupted) and one-line messages on stderr.
"""

from __future__ import annotations

import importlib
import signal
import sys

import click

from vsr import __version__
from vsr.errors import EXIT_FAILURE, EXIT_USAGE, Terminated, VsrError, exit_code_of_interrupt, one_line

# command name -> (module, attribute, one-line help shown by `vsr --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "enhance": (
        "vsr.cli.enhance",
        "enhance",
        "Super-resolve a video: decode, upscale, re-encode (keeps audio, timing, tags).",
    ),
    "batch": (
        "vsr.cli.batch",
        "batch",
        "Enhance many files (folders, globs, a manifest) idempotently, locally or on Ray.",
    ),
    "probe": ("vsr.cli.probe", "probe", "Describe a video's streams, size, rate, rotation and colour tags."),
    "models": ("vsr.cli.models", "models", "List the registered models, their weights and measured quality."),
    "sample": (
        "vsr.cli.sample",
        "sample",
        "Write a synthetic test clip (moving shapes, a face-like pattern, audio).",
    ),
    "train": (
        "vsr.cli.train",
        "train",
        "Train an SRGAN generator on faces or frames (psnr, then gan stage).",
    ),
    "eval": (
        "vsr.cli.evaluate",
        "evaluate",
        "Measure a model's PSNR/SSIM on images, faces or a video vs bicubic/Lanczos.",
    ),
    "compare": ("vsr.cli.compare", "compare", "Make a side-by-side before/after video and snapshots."),
    "bench": ("vsr.cli.bench", "bench", "Time decode, model, detection, encode and end-to-end here."),
    "restore": ("vsr.cli.restore", "restore", "Regenerate masked (occluded) parts of faces in images."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        from vsr.cli.options import with_env_hints

        module, attr, _ = COMMANDS[name]
        return with_env_hints(getattr(importlib.import_module(module), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="vsr")
def cli() -> None:
    """vsr: face-aware video super-resolution.

    \b
    Quick start:
      vsr sample sample.mp4
      vsr enhance sample.mp4 sample_x2.mp4 --scale 2
    """


def _terminate(signum: int, frame) -> None:
    """SIGTERM / SIGHUP: unwind like Ctrl-C (every temporary file is removed on the way out)."""
    raise Terminated(signum)


def handle_stop_signals() -> None:
    """Make SIGTERM and SIGHUP end a run the way Ctrl-C does (exit 143 / 129, nothing left behind)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # (tests calling main() from a worker thread: signals go to the main thread anyway)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)


def _stopped(exc: KeyboardInterrupt) -> None:
    """The one line and the exit code of a run stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129)."""
    what = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}.get(getattr(exc, "signum", None))
    click.echo(f"vsr: {what or 'interrupted'}{'; ' + one_line(exc) if str(exc) else ''}", err=True)
    sys.exit(exit_code_of_interrupt(exc))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to exit codes with a one-line message."""
    handle_stop_signals()
    try:
        rv = cli.main(args=argv, prog_name="vsr", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's wrapping of a KeyboardInterrupt (Ctrl-C, or a Terminated)
        _stopped(exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else KeyboardInterrupt())
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except KeyboardInterrupt as exc:
        _stopped(exc)
    except VsrError as exc:
        click.echo(f"vsr: error: {one_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except OSError as exc:  # the system refused a file operation mid-run: disk full, quota, I/O error
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(
            f"vsr: error: a file operation failed: {one_line(Exception(exc.strerror or exc))}{where}",
            err=True,
        )
        sys.exit(EXIT_FAILURE)
    sys.exit(rv if isinstance(rv, int) else 0)
