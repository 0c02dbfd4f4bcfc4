"""Discriminator, losses, optional VGG19 perceptual loss, config TOML round trip."""

from __future__ import annotations

import pytest
import torch

from vsr.errors import ConfigError, WeightsError
from vsr.models.discriminator import Discriminator
from vsr.pipelines.train import losses as L
from vsr.pipelines.train.config import TrainConfig
from vsr.pipelines.train.config_toml import from_dict, read_toml, resolve, to_toml


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (40, 56)])
def test_discriminator_any_size_and_features(size):
    torch.manual_seed(0)
    d = Discriminator(channels=4, stages=3, dense=16)
    x = torch.rand(2, 3, *size)
    logits, feats = d(x, features=True)
    assert logits.shape == (2,)
    assert [f.shape[1] for f in feats] == [4, 8, 16]
    assert feats[-1].shape[-2:] == (size[0] // 8, size[1] // 8)
    assert torch.equal(d(x), logits)


def test_adversarial_losses_reward_the_right_side():
    real, fake = torch.tensor([3.0, 2.5]), torch.tensor([-2.0, -3.0])
    for kind in ("vanilla", "relativistic"):
        # a discriminator that separates well has a low loss; the generator's loss is then high
        assert L.discriminator_loss(real, fake, kind) < L.discriminator_loss(fake, real, kind)
        assert L.generator_adversarial_loss(real, fake, kind) > L.generator_adversarial_loss(fake, real, kind)
    # relativistic loss depends only on differences between real and fake
    shift = torch.tensor(5.0)
    assert torch.allclose(L.discriminator_loss(real + shift, fake + shift), L.discriminator_loss(real, fake))
    assert not torch.allclose(
        L.discriminator_loss(real + shift, fake + shift, "vanilla"),
        L.discriminator_loss(real, fake, "vanilla"),
    )


def test_feature_matching_and_pixel_losses():
    a = [torch.ones(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    b = [torch.ones(1, 2, 4, 4) * 2, torch.zeros(1, 3, 2, 2)]
    assert L.feature_matching_loss(a, a) == 0
    assert L.feature_matching_loss(a, b).item() == pytest.approx(0.5)
    x, y = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert L.pixel_loss(x, y, "l1").item() == pytest.approx(0.5)
    assert L.pixel_loss(x, y, "mse").item() == pytest.approx(0.25)


def test_vgg19_perceptual_loss_needs_and_loads_user_weights(tmp_path):
    torch.manual_seed(0)
    full = L.VGG19Features("conv5_4")
    # torchvision layout: features.N.* plus a classifier that is ignored
    state = {f"features.{k.split('.', 1)[1]}": v for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = L.load_vgg19(path, "conv2_2")
    # indices as in torchvision's vgg19().features: conv2_2 is features.7, conv5_4 is features.34
    assert (
        len(vgg.features) == 8
        and len(full.features) == 35
        and not any(p.requires_grad for p in vgg.parameters())
    )
    assert torch.equal(vgg.features[7].weight, full.features[7].weight)
    x = torch.rand(1, 3, 16, 16)
    assert L.perceptual_loss(vgg, x, x).item() == 0
    assert L.perceptual_loss(vgg, x, x.flip(-1)).item() > 0
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="do not fit"):
        L.load_vgg19(path, "conv1_1")
    path.write_bytes(b"junk")
    with pytest.raises(WeightsError, match="not a readable state dict"):
        L.load_vgg19(path)


def test_config_toml_round_trip_and_messages(tmp_path):
    cfg = resolve(
        flags={
            "data.sources": ["images:/faces"],
            "data.hr_size": 64,
            "optim.lr": 3e-4,
            "loss.adversarial": "vanilla",
        }
    )
    text = to_toml(cfg)
    assert "# HR crop side in pixels (a multiple of the scale) [--hr-size]" in text
    assert "# init =" in text  # unset values are comments
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert from_dict(read_toml(path)) == cfg
    assert from_dict(read_toml(path)).arch == {
        "arch": "srresnet",
        "scale": 4,
        "blocks": 16,
        "channels": 64,
        "batch_norm": True,
    }
    # the printed defaults are valid TOML that reads back to the defaults
    path.write_text(to_toml(TrainConfig()))
    assert from_dict(read_toml(path)) == TrainConfig()
    with pytest.raises(ConfigError, match=r"data.hr_size \(--hr-size\) must be a multiple of the scale"):
        resolve(flags={"data.sources": ["images:/x"], "data.hr_size": 30})
    with pytest.raises(ConfigError, match=r"unknown config key 'data.hr_sise'; did you mean data.hr_size"):
        resolve(flags={"data.hr_sise": 3})
    with pytest.raises(ConfigError, match=r"data.sources \(--data\) is empty"):
        resolve()
    with pytest.raises(ConfigError, match=r"--data\): 'faces' is not KIND:PATH"):
        resolve(flags={"data.sources": ["faces"]})
    with pytest.raises(ConfigError, match=r"steps \(--steps\) must be an integer"):
        resolve(flags={"data.sources": ["images:/x"], "steps": "many"})
    path.write_text("steps = [1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(path)
