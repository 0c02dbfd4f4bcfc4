"""Typed configuration for ``vsr batch``: the batch's own options plus an ``EnhanceConfig`` of defaults."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from vsr.config import EnhanceConfig
from vsr.errors import ConfigError

ENGINES = ("local", "ray")
HASH_MODES = ("quick", "full")
SUFFIX_FIELDS = ("scale", "model")


@dataclass
class BatchConfig:
    """Everything ``vsr batch`` needs; ``defaults`` holds the ``vsr enhance`` options for every file."""

    inputs: list[str]
    out_dir: Path
    defaults: EnhanceConfig
    suffix: str = "_x{scale}"
    manifest: Path | None = None
    recursive: bool = False
    workers: int | None = None  # None = one per GPU, else 1
    timeout: float | None = None  # seconds per file; None = no limit
    retries: int = 2  # extra attempts for transient failures (OOM, a worker that died)
    hash: str = "quick"  # quick: size, mtime, sha256 of the first and last MiB; full: sha256 of everything
    dry_run: bool = False
    report: Path | None = None
    engine: str = "local"
    ray_address: str | None = None  # None = start a local Ray; "auto" = the running cluster
    gpus_per_job: float | None = None  # Ray: GPUs per worker actor; None = 1 when a GPU is visible, else 0
    cpus_per_job: int | None = None  # Ray: CPUs per worker actor; None = 1, or the node's CPUs per GPU
    retry_delay: float = 2.0  # seconds before retrying after out of memory (times the attempt number)

    def validate(self) -> BatchConfig:
        """Raise ``ConfigError`` naming the flag for any value that cannot work."""
        self.defaults.validate()
        if not self.inputs and self.manifest is None:
            raise ConfigError("give at least one INPUT (file, folder or glob) or --manifest FILE")
        if "/" in self.suffix or "\\" in self.suffix:
            raise ConfigError(f"--suffix must not contain a path separator, got {self.suffix!r}")
        for _, name, _, _ in string.Formatter().parse(self.suffix):
            if name is not None and name not in SUFFIX_FIELDS:
                raise ConfigError(
                    f"--suffix {self.suffix!r}: unknown field {{{name}}}; use {{scale}} or {{model}}"
                )
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.retries < 0:
            raise ConfigError(f"--retries must be 0 or more, got {self.retries}")
        if self.hash not in HASH_MODES:
            raise ConfigError(f"--hash must be quick or full, got {self.hash!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be local or ray, got {self.engine!r}")
        if self.ray_address is not None and self.engine != "ray":
            raise ConfigError("--ray-address needs --engine ray")
        if self.gpus_per_job is not None and self.gpus_per_job < 0:
            raise ConfigError(f"--gpus-per-job must be 0 or more, got {self.gpus_per_job}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise ConfigError(f"--cpus-per-job must be at least 1, got {self.cpus_per_job}")
        if self.cpus_per_job is not None and self.engine != "ray":
            raise ConfigError("--cpus-per-job needs --engine ray (local workers share the cores equally)")
        return self
