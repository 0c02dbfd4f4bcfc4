"""The model registry: one dict literal maps a name to its builder, scale and weights.

Weights are data: a spec names a file under ``models/weights/``, its sha256,
licence, training data and measured metrics.  ``load_model_from`` accepts a
registry name, a ``.safetensors`` file or a trainer checkpoint, and refuses to
hand out a network whose weights it could not verify: a randomly initialised
network never produces user output.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsr.errors import ModelError, UsageError, WeightsError

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARDS_DIR = Path(__file__).parent / "cards"


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's weights are and what they were trained on.

    The measured quality is not typed in here: it is read from the model card's ``cards/NAME.json``,
    which ``benchmarks/release_models.py`` writes from real ``vsr eval`` runs.
    """

    file: str
    sha256: str
    licence: str
    data: str


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry.  ``scale`` None means any scale (interpolation baselines)."""

    name: str
    arch: dict[str, Any]
    scale: int | None
    description: str
    weights: WeightsSpec | None = None
    face: bool = False
    task: str = "sr"  # sr (vsr enhance / eval) or restore (vsr restore / eval restore)

    @property
    def card(self) -> Path:
        return CARDS_DIR / f"{self.name}.md"

    @property
    def metrics(self) -> dict[str, Any]:
        """Headline results from the card's JSON: per evaluation set, the model's scores and the baselines'."""
        path = CARDS_DIR / f"{self.name}.json"
        if not path.is_file():
            return {}
        results = json.loads(path.read_text()).get("results", {})
        keys = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "sharpness", "flicker")
        keys += ("psnr_masked", "ssim_masked", "psnr", "ssim")  # restore models
        return {
            name: {
                **{k: r[k] for k in keys if r.get(k) is not None},
                **{b: {k: v[k] for k in keys if v.get(k) is not None} for b, v in r["baselines"].items()},
            }
            for name, r in results.items()
        }


def _interp(name: str, kernel: str, description: str) -> ModelSpec:
    return ModelSpec(
        name=name, arch={"arch": "interpolation", "kernel": kernel}, scale=None, description=description
    )


UTKFACE = "non-commercial research only (UTKFace)"
SHIPPED_ARCH = {"arch": "srresnet", "blocks": 6, "channels": 32, "batch_norm": False}
FACE_DATA = "shared faces/train (UTKFace) and face crops from videos/; validated on faces/val"
GENERAL_DATA = "shared scenes, urban (Urban100), frames of videos/, faces/train"


def _trained(name: str, scale: int, face: bool, sha256: str) -> ModelSpec:
    """A shipped SRResNet: ``NAME-psnr`` is the pixel-loss stage, ``NAME`` the GAN stage fine-tuned from it."""
    licence = UTKFACE  # every shipped model saw UTKFace faces, so its licence binds the weights
    stage = "pixel loss" if name.endswith("-psnr") else "GAN stage: sharper, lower PSNR"
    return ModelSpec(
        name=name,
        arch={**SHIPPED_ARCH, "scale": scale},
        scale=scale,
        description=f"{'Faces' if face else 'Whole frames'} x{scale}, SRResNet 6x32 ({stage}), CPU-trained",
        weights=WeightsSpec(f"{name}.safetensors", sha256, licence, FACE_DATA if face else GENERAL_DATA),
        face=face,
    )


REGISTRY: dict[str, ModelSpec] = {
    "bicubic": _interp("bicubic", "cubic", "Bicubic interpolation (MATLAB kernel, a=-0.5): the baseline"),
    "lanczos": _interp("lanczos", "lanczos3", "Lanczos-3 interpolation: the sharper classical baseline"),
    **{
        name: _trained(name, scale, face, sha256)
        for name, scale, face, sha256 in (
            ("face-x4-psnr", 4, True, "d4db5c450044b89c6f2b0f7fa483ebc3a339eae9429e819a7e0fc0cd8f1c6331"),
            ("face-x4", 4, True, "6f5d694a7363f8794ab956b7379d568d96924aefcc03dcd875fa8d4a1f9324a0"),
            ("face-x2-psnr", 2, True, "813b7df708f2588e8fb1205847884450f115303a4c0f48b926c3261bb2c86bb3"),
            ("face-x2", 2, True, "438f8698d97bd11e85d5e076bc4f182b0679f0b0600be5a46d63e6ce56a0ee3f"),
            ("general-x4-psnr", 4, False, "b3066d2a428561879efcafe92eb2d291b39b03ea339194623bac19271820e676"),
            ("general-x4", 4, False, "115ea2d2d8e6854cf0aab49a3742ebecfc4f4bb8a6855de78acea91ccc46bd7d"),
            ("general-x2-psnr", 2, False, "f27a9842d47005b04fe9b9b8128cc6d07679b2055994db23f9bbe1a6e8608414"),
            ("general-x2", 2, False, "9c99b0a2132b1e96983071e4d20b42c2f460b6ef7b26e38461d3c9f6184e9e13"),
        )
    },
}

REGISTRY["restore-face"] = ModelSpec(
    name="restore-face",
    arch={
        "arch": "inpaint",
        "scale": 1,
        "in_channels": 3,
        "channels": 16,
        "downsamples": 3,
        "dilated": 4,
        "size": 64,
    },
    scale=1,
    description="Face occlusion restoration (inpainting) at 64x64, gated-conv U-Net, L1 then L2 + GAN, CPU-trained",
    weights=WeightsSpec(
        "restore-face.safetensors",
        "1e089a622f21b1c7a706899d0e95e12580f5af249685694b5640663579ced5a9",
        UTKFACE,
        "shared faces/train (UTKFace aligned chips) with synthetic occlusions; validated on faces/val",
    ),
    face=True,
    task="restore",
)

# The models `vsr enhance` uses when --model / --face-model are not given, per scale.  Chosen by
# measurement from the cards (tests/test_shipped_models.py checks both rules against them):
# - general: the GAN model unless it flickers clearly more (>10 %) than the PSNR one on the shared clips
#   (x4: 0.72 / 1.05 vs 0.69 / 0.96, +7 %; x2: equal), among models above bicubic on Set5 and Set14;
# - faces: the face model with the highest faces/val RGB PSNR (identity first), only where it beats Lanczos
#   and, by more than 0.1 dB, the general default on faces/val (x2: 45.67 vs 45.66 dB, so x2 runs in
#   frame mode: detection would buy nothing).
DEFAULT_MODEL: dict[int, str] = {2: "general-x2", 4: "general-x4"}
DEFAULT_FACE_MODEL: dict[int, str] = {4: "face-x4-psnr"}


def get_spec(name: str) -> ModelSpec:
    """Look up a registry name, suggesting the closest names when it is unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else f"; known models: {', '.join(sorted(REGISTRY))}"
        )
        raise ModelError(f"unknown model {name!r}{hint} (or give a .safetensors / .ckpt path)") from None


def build_model(arch: dict[str, Any], scale: int):
    """Build an untrained network from an architecture dict (no weights)."""
    from vsr.models.resample import Interpolation
    from vsr.models.srresnet import SRResNet

    kind = arch.get("arch")
    if kind == "interpolation":
        return Interpolation(scale, arch["kernel"])
    if kind == "inpaint":
        from vsr.models.inpaint import InpaintNet

        return InpaintNet(
            in_channels=int(arch.get("in_channels", 3)),
            channels=int(arch.get("channels", 16)),
            downsamples=int(arch.get("downsamples", 3)),
            dilated=int(arch.get("dilated", 4)),
        )
    if kind == "srresnet":
        if int(arch.get("scale", scale)) != scale:
            raise ModelError(f"the model is for scale {arch['scale']}, but --scale {scale} was asked for")
        return SRResNet(
            scale=scale,
            blocks=int(arch.get("blocks", 16)),
            channels=int(arch.get("channels", 64)),
            batch_norm=bool(arch.get("batch_norm", True)),
        )
    raise ModelError(f"unknown architecture {kind!r}")


@dataclass(frozen=True)
class LoadedModel:
    """A ready network plus what the report needs to say about it."""

    module: Any
    name: str
    scale: int  # the model's own factor (1 for a face restorer, which works on aligned faces)
    params: int
    sha256: str | None
    licence: str | None = None  # None: not stated by the file (check where it came from)
    arch: str = "srresnet"
    purpose: str = "SR"  # SR | FaceSR (a fixed-size face restorer) | Restoration

    @property
    def learned(self) -> bool:
        """A network with weights (its pixels are a model's output), not a classical interpolation."""
        return self.params > 0

    @property
    def generative_face_restorer(self) -> bool:
        """GFPGAN, RestoreFormer: they invent facial detail, which the report must say."""
        return bool(getattr(self.module, "generative", False))


def load_model_from(name_or_path: str, scale: int | None) -> LoadedModel:
    """Registry name or weights file -> eval-mode network on the CPU (``vsr.models.loading`` policy).

    ``scale`` None takes the model's own; a third-party model whose scale differs from ``scale`` is a
    usage error naming both.
    """
    from vsr.models.loading import is_weights_path, read_weights
    from vsr.models.weights import load_state_strict, read_safetensors, verify_sha256

    if name_or_path in REGISTRY or not is_weights_path(name_or_path):
        spec = get_spec(name_or_path)
        if spec.scale is not None and scale is not None and spec.scale != scale:
            raise ModelError(
                f"model {spec.name} is for scale {spec.scale}; use --scale {spec.scale} or another model"
            )
        scale = scale or spec.scale
        if scale is None:
            raise UsageError(f"model {spec.name} works at any scale: pass --scale")
        module = build_model(spec.arch, scale)
        digest = None
        if spec.weights is not None:
            wpath = WEIGHTS_DIR / spec.weights.file
            if not wpath.is_file():
                raise WeightsError(f"weights for {spec.name} are missing ({wpath}); reinstall the package")
            digest = verify_sha256(wpath, spec.weights.sha256)
            state, _ = read_safetensors(wpath)
            load_state_strict(module, state, wpath)
        elif spec.arch["arch"] != "interpolation":
            raise WeightsError(
                f"model {spec.name} has no weights; refusing to run a randomly initialised network"
            )
        name, arch = spec.name, str(spec.arch["arch"])
        licence = spec.weights.licence if spec.weights else "classical interpolation (no weights)"
    else:
        weights = read_weights(name_or_path)
        if not weights.ours:
            from vsr.models.zoo import load_third_party

            return load_third_party(weights, scale)
        path = weights.path
        scale = scale or int(weights.arch.get("scale", 0)) or None
        if scale is None:
            raise UsageError(f"{path}: the file does not say its scale: pass --scale")
        digest = _verify_sidecar(path) if path.suffix.lower() == ".safetensors" else None
        module = build_model(weights.arch, scale)
        load_state_strict(module, {k: v.float() for k, v in weights.state.items()}, path)
        name, arch = str(path), str(weights.arch.get("arch"))
        licence = weights.arch.get("licence") or weights.metadata.get("licence")
    module.eval()
    params = sum(p.numel() for p in module.parameters())
    return LoadedModel(
        module=module, name=name, scale=scale, params=params, sha256=digest, arch=arch, licence=licence
    )


def native_scale(name_or_path: str) -> int | None:
    """The scale a model works at (None: any, such as interpolation or a 1x face restorer).

    For a weights file this reads it and recognises its architecture (no network is built for ours).
    """
    from vsr.models.loading import is_weights_path, read_weights

    if name_or_path in REGISTRY or not is_weights_path(name_or_path):
        return get_spec(name_or_path).scale
    weights = read_weights(name_or_path)
    if weights.ours:
        return int(weights.arch["scale"]) if "scale" in weights.arch else None
    from vsr.models.zoo import recognise

    descriptor = recognise(weights)
    return None if descriptor.purpose == "FaceSR" else int(descriptor.scale)


def _verify_sidecar(path: Path) -> str:
    """Check ``FILE.safetensors.sha256`` when it exists (as ``vsr train export`` writes it); return the digest."""
    from vsr.digest import sha256_of
    from vsr.models.weights import verify_sha256

    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
        if expected:
            return verify_sha256(path, expected)
    return sha256_of(path)


def describe_model(spec: ModelSpec) -> dict[str, Any]:
    """A registry entry as a plain dict for ``vsr models`` (parameter count without loading weights)."""
    params = 0
    if spec.arch.get("arch") in ("srresnet", "inpaint"):
        module = build_model(spec.arch, int(spec.arch["scale"]))
        params = sum(p.numel() for p in module.parameters())
    w = spec.weights
    return {
        "name": spec.name,
        "scale": spec.scale,
        "description": spec.description,
        "face": spec.face,
        "params": params,
        "weights": w.file if w else None,
        "sha256": w.sha256 if w else None,
        "licence": w.licence if w else None,
        "data": w.data if w else None,
        "metrics": spec.metrics,
        "card": str(spec.card) if spec.card.is_file() else None,
    }


def inspect_file(path: str) -> dict[str, Any]:
    """What ``vsr models --inspect FILE`` prints: architecture, scale, size, input needs, precisions, sha256, licence."""
    from vsr.digest import sha256_of
    from vsr.models.zoo import ZooModule

    loaded = load_model_from(path, None)
    m = loaded.module
    return {
        "file": path,
        "architecture": loaded.arch,
        "purpose": loaded.purpose,
        "loader": "spandrel" if isinstance(m, ZooModule) else "vsr",
        "scale": loaded.scale,
        "params": loaded.params,
        "input": {
            "multiple_of": int(getattr(m, "size_multiple", 1)),
            "minimum": int(getattr(m, "size_minimum", 0)),
            "aligned_face": getattr(m, "face_size", None) if loaded.generative_face_restorer else None,
        },
        "precision": {
            "fp32": True,
            "fp16": bool(getattr(m, "supports_fp16", True)),
            "bf16": bool(getattr(m, "supports_bf16", True)),
        },
        "generative_face_restorer": loaded.generative_face_restorer,
        "sha256": loaded.sha256 or sha256_of(Path(path)),
        "licence": loaded.licence or "unknown: check the source",
    }


class ModelCache:
    """Models loaded once per process and handed out again (a batch worker enhances many files).

    Loading verifies the weights' sha256 each first time; a cached module is shared by every run that
    asks for the same name and scale, so callers must not modify it (``Upscaler`` only moves it to its
    device and switches it to eval mode, which every run wants alike).
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, int | None], LoadedModel] = {}

    def load(self, name_or_path: str, scale: int | None) -> LoadedModel:
        key = (name_or_path, scale)
        if key not in self._models:
            self._models[key] = load_model_from(name_or_path, scale)
        return self._models[key]

    def __len__(self) -> int:
        return len(self._models)
