"""Shared building blocks: shapes, losses, schedules, initialisation, image pool; pix2pix end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import networks
from tests.conftest import run_script, write_image
from util.errors import UserError
from util.image_pool import ImagePool


@pytest.mark.parametrize("netG, size", [("resnet_9blocks", 32), ("resnet_6blocks", 36), ("unet_32", 32), ("unet_64", 64),
                                        ("unet_128", 128), ("unet_256", 256)])
def test_generators_keep_the_image_shape(netG, size):
    net = networks.define_generator(netG, 3, 3, ngf=4, norm="instance", use_dropout=True)
    out = net(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1


def test_unet_explains_a_wrong_size():
    with pytest.raises(UserError, match="multiples of 64"):
        networks.define_generator("unet_64", 3, 3, 4, "batch", False)(torch.rand(1, 3, 48, 48))


def test_unknown_architecture_names_the_option():
    with pytest.raises(ValueError, match="--netG"):
        networks.define_generator("resnet_x", 3, 3, 4, "batch", False)
    with pytest.raises(ValueError, match="--norm"):
        networks.norm_layer_factory("group")


@pytest.mark.parametrize("netD, shape", [("basic", (1, 1, 6, 6)), ("n_layers", (1, 1, 14, 14)), ("pixel", (1, 1, 64, 64))])
def test_discriminators_output_maps(netD, shape):
    net = networks.define_discriminator(netD, 3, ndf=4, n_layers_D=2, norm="batch")
    assert net(torch.rand(1, 3, 64, 64)).shape == shape


def test_patchgan_receptive_field_is_70_pixels():
    net = networks.define_discriminator("basic", 1, ndf=2, n_layers_D=3, norm="none")
    image = torch.zeros(1, 1, 128, 128, requires_grad=True)
    net(image)[0, 0, 5, 5].backward()
    rows, cols = torch.nonzero(image.grad[0, 0], as_tuple=True)
    assert rows.max() - rows.min() + 1 <= 70 and cols.max() - cols.min() + 1 <= 70
    assert rows.max() - rows.min() + 1 >= 60


def test_gan_losses():
    prediction = torch.tensor([[0.5, 2.0]])
    assert networks.GANLoss("lsgan")(prediction, True).item() == pytest.approx(((0.5 - 1) ** 2 + (2 - 1) ** 2) / 2)
    assert networks.GANLoss("lsgan")(prediction, False).item() == pytest.approx((0.25 + 4) / 2)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(prediction, torch.ones_like(prediction))
    assert networks.GANLoss("vanilla")(prediction, True).item() == pytest.approx(bce.item())
    assert networks.GANLoss("wgangp")(prediction, True).item() == pytest.approx(-1.25)
    assert networks.GANLoss("lsgan")(prediction, False, target=0.3).item() == pytest.approx(((0.2) ** 2 + 1.7**2) / 2)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    critic = torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.constant_(critic.weight, 1.0)
    flat = torch.nn.Sequential(critic, torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    torch.nn.init.constant_(flat[2].weight, 0.5)  # gradient norm = 0.5 * sqrt(4) = 1
    assert networks.gradient_penalty(flat, torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)).item() == pytest.approx(0.0, abs=1e-10)


def _lrs(policy: str, epochs: int, **kwargs) -> list[float]:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = networks.make_scheduler(optimizer, policy, epoch_count=1, n_epochs=kwargs.get("n_epochs", 2),
                                        n_epochs_decay=kwargs.get("n_epochs_decay", 3), lr_decay_iters=2)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(0.0) if policy == "plateau" else scheduler.step()
    return rates


def test_linear_policy_holds_then_decays_to_zero():
    assert _lrs("linear", 5) == pytest.approx([1, 1, 0.75, 0.5, 0.25])


def test_step_cosine_and_plateau_policies():
    assert _lrs("step", 5) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cosine = _lrs("cosine", 3, n_epochs=2)
    assert cosine[0] == 1 and cosine[1] == pytest.approx(0.5) and cosine[2] == pytest.approx(0.0, abs=1e-12)
    plateau = _lrs("plateau", 8)
    assert plateau[0] == 1 and plateau[-1] == pytest.approx(0.2)


@pytest.mark.parametrize("init_type", networks.INIT_TYPES)
def test_initialisations(init_type):
    torch.manual_seed(0)
    net = networks.init_weights(torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64)), init_type, 0.02)
    std = net[0].weight.std().item()
    assert 0.001 < std < 0.5 and torch.all(net[0].bias == 0)
    if init_type == "normal":
        assert std == pytest.approx(0.02, rel=0.1)


def test_image_pool_state_round_trip_continues_identically():
    pool = ImagePool(3, seed=5)
    for i in range(4):
        pool.query(torch.full((2, 1, 1, 1), float(i)))
    copy = ImagePool(3, seed=0)
    copy.load_state_dict(pool.state_dict())
    for i in range(5):
        batch = torch.full((2, 1, 1, 1), 10.0 + i)
        assert torch.equal(pool.query(batch), copy.query(batch))
    assert torch.equal(ImagePool(0).query(batch), batch)


def test_pix2pix_trains_and_tests_on_aligned_data(tmp_path):
    rng = np.random.default_rng(0)
    for phase in ("train", "test"):
        for i in range(3):
            half = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            write_image(tmp_path / "data" / phase / f"{i}.png", np.concatenate([half, 255 - half], axis=1))
    common = ["--dataroot", str(tmp_path / "data"), "--name", "p2p", "--model", "pix2pix", "--checkpoints_dir",
              str(tmp_path / "ckpt"), "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "unet_32", "--crop_size", "32",
              "--num_threads", "0", "--no_progress"]
    train = run_script("train.py", *common, "--load_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0",
                       "--display_id", "0", "--batch_size", "2")
    assert train.returncode == 0, train.stderr[-2000:]
    test = run_script("test.py", *common, "--results_dir", str(tmp_path / "res"), "--eval")
    assert test.returncode == 0, test.stderr[-2000:]
    rows = json.loads((tmp_path / "res" / "p2p" / "test_latest" / "results.json").read_text())["rows"]
    assert len(rows) == 3 and list(rows[0]["visuals"]) == ["real_A", "fake_B", "real_B"]
    # Without --netG the run's U-Net is taken from the checkpoint before the size is checked
    # (the default unet_256 would refuse --crop_size 32); a wrong explicit one is still refused.
    at = common.index("--netG")
    without_netG = common[:at] + common[at + 2:]
    adopted = run_script("test.py", *without_netG, "--results_dir", str(tmp_path / "res2"), "--eval")
    assert adopted.returncode == 0 and "--netG unet_32" in adopted.stdout, adopted.stderr[-2000:]
    wrong = run_script("test.py", *without_netG, "--netG", "unet_256", "--results_dir", str(tmp_path / "res3"))
    assert wrong.returncode == 2 and "multiples of 256" in wrong.stderr
