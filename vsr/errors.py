"""Typed errors.  Library code raises these; only ``vsr.cli`` turns them into exit codes.

Every message is one line that names the problem and, where there is one, the fix.
"""

from __future__ import annotations

import re
import signal

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives 143 and SIGHUP 129 (128 + the signal's number)


class VsrError(Exception):
    """Base class: a failure the user can act on.  ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_FAILURE


class UsageError(VsrError):
    """Bad arguments or options (exit code 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config value is invalid; the message names the flag or TOML key."""


class PlanError(UsageError):
    """A batch plan cannot run as given: a manifest error, two inputs for one output, an output over an
    input, a path outside the allowed roots (exit code 2, before anything runs)."""


class EngineError(VsrError):
    """The batch could not run at all: workers fail to start, Ray is missing or unreachable."""


class InputError(VsrError):
    """The input is missing, unreadable, or not what was expected."""


class DecodeError(InputError):
    """The input is truncated or corrupt beyond the decoder's tolerance."""


class UnsupportedError(InputError):
    """The input uses a codec or format this build cannot handle."""


class OutputError(VsrError):
    """The output cannot be written (exists, unwritable, same as input)."""


class EncodeError(VsrError):
    """The encoder or muxer failed."""


class ModelError(VsrError):
    """Unknown model name, bad architecture, or an unusable checkpoint."""


class WeightsError(ModelError):
    """A weights file is missing, tampered with (sha256 mismatch) or does not fit the network."""


class ResourceError(VsrError):
    """Out of memory or another resource that retrying differently cannot fix."""


class PartialFailure(VsrError):
    """Some items of a multi-item run (a folder, a batch) failed; the others completed (exit code 3).

    ``report`` carries the run's report, so callers can still show what was done.
    """

    exit_code = EXIT_PARTIAL

    def __init__(self, message: str, report=None) -> None:
        super().__init__(message)
        self.report = report


class DataError(VsrError):
    """A training or evaluation data set is empty, malformed, or inconsistent."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, cron supervisors, Docker, Kubernetes, a closed terminal), handled like
    Ctrl-C: every ``finally`` runs, so nothing half-written is left; the exit code is 128 + the signal."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum


def exit_code_of_interrupt(exc: KeyboardInterrupt) -> int:
    return 128 + getattr(exc, "signum", signal.SIGINT)


# C0 and C1 control characters (escape sequences start with ESC or CSI), DEL, and the bidirectional
# overrides that can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: object, limit: int | None = None) -> str:
    """``text`` made safe to print on a terminal: control characters and escape sequences shown as ``\\x1b``
    escapes (a file name or a file's metadata must not be able to rewrite the user's terminal), and cut to
    ``limit`` characters with an ellipsis."""
    text = _UNSAFE.sub(lambda m: repr(m[0])[1:-1] if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", str(text))
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "\u2026"
    return text


def one_line(exc: BaseException) -> str:
    """Collapse an exception's message to a single, terminal-safe line for the user."""
    text = str(exc).strip() or type(exc).__name__
    return safe_text(" ".join(text.split()))
