"""Registry and weight loading: strict, verified, and never a random network for user output."""

from __future__ import annotations

import pytest
import torch

from vsr.errors import ModelError, WeightsError
from vsr.models import registry
from vsr.models.registry import ModelSpec, WeightsSpec, load_model_from
from vsr.models.srresnet import SRResNet
from vsr.models.weights import sha256_of, write_safetensors

ARCH = {"arch": "srresnet", "scale": 2, "blocks": 2, "channels": 8, "batch_norm": True}


def _export(tmp_path, arch=ARCH):
    torch.manual_seed(1)
    net = SRResNet(arch["scale"], arch["blocks"], arch["channels"])
    path = tmp_path / "w.safetensors"
    digest = write_safetensors(net.state_dict(), arch, path, half=False)
    return net, path, digest


def test_srresnet_shapes_and_parameter_count():
    for scale in (2, 4):
        y = SRResNet(scale, blocks=2, channels=8)(torch.rand(1, 3, 10, 12))
        assert y.shape == (1, 3, 10 * scale, 12 * scale)
    paper = SRResNet(4)
    assert 1.4e6 < sum(p.numel() for p in paper.parameters()) < 1.7e6  # SRResNet x4 has ~1.5 M parameters


def test_safetensors_round_trip_with_sidecar(tmp_path):
    net, path, digest = _export(tmp_path)
    (tmp_path / "w.safetensors.sha256").write_text(digest + "\n")
    loaded = load_model_from(str(path), 2)
    assert loaded.sha256 == digest == sha256_of(path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), net.eval()(x))


def test_tampered_file_is_refused(tmp_path):
    _, path, digest = _export(tmp_path)
    (tmp_path / "w.safetensors.sha256").write_text(digest)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_model_from(str(path), 2)


def test_registry_entry_verifies_sha256(tmp_path, monkeypatch):
    _, path, digest = _export(tmp_path)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    good = ModelSpec("tiny", ARCH, 2, "test", WeightsSpec("w.safetensors", digest, "MIT", "none"))
    bad = ModelSpec("tiny-bad", ARCH, 2, "test", WeightsSpec("w.safetensors", "0" * 64, "MIT", "none"))
    monkeypatch.setitem(registry.REGISTRY, "tiny", good)
    monkeypatch.setitem(registry.REGISTRY, "tiny-bad", bad)
    assert load_model_from("tiny", 2).sha256 == digest
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_model_from("tiny-bad", 2)
    with pytest.raises(ModelError, match="scale 2"):
        load_model_from("tiny", 4)


def test_network_without_weights_is_refused(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "untrained", ModelSpec("untrained", ARCH, 2, "no weights"))
    with pytest.raises(WeightsError, match="randomly initialised"):
        load_model_from("untrained", 2)


def test_key_mismatch_is_readable(tmp_path):
    _, path, _ = _export(tmp_path, {**ARCH, "blocks": 2})
    # claim a different architecture in a checkpoint built from these weights
    from safetensors.torch import load_file

    state = load_file(str(path))
    ckpt = tmp_path / "c.ckpt"
    torch.save({"arch": {**ARCH, "blocks": 3}, "params": state}, ckpt)
    with pytest.raises(WeightsError, match=r"missing: body\.2"):
        load_model_from(str(ckpt), 2)
    torch.save({"arch": {**ARCH, "channels": 16}, "params": state}, ckpt)
    with pytest.raises(WeightsError, match="wrong shape"):
        load_model_from(str(ckpt), 2)


def test_unknown_model_suggests_names():
    with pytest.raises(ModelError, match="did you mean lanczos"):
        load_model_from("lanczso", 2)
    with pytest.raises(WeightsError, match="not found"):
        load_model_from("/no/such/file.safetensors", 2)
