"""GuideGAN: PHA and TAM by hand, the joins, the per-image bank with crops and flips, and runs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from models import create_model
from models.guidance import AttentionBank, AttentiveDiscriminator, join, post_hoc_attention
from options import parse_test_options, parse_train_options
from tests.conftest import make_unaligned, run_script, write_image
from tests.test_precision import unpaired_batch
from util.errors import UserError


def test_pha_is_the_channel_mean_of_the_4th_block_min_max_normalised_and_resized():
    torch.manual_seed(0)
    net = AttentiveDiscriminator(3, ndf=4, norm="instance", attention="pha")
    x = torch.randn(2, 3, 32, 32)
    activation = net.features(x)  # the 4th conv block's output
    assert activation.shape[1] == 32  # 8 * ndf channels
    by_hand = activation.abs().mean(dim=1, keepdim=True)
    low, high = by_hand.amin(dim=(2, 3), keepdim=True), by_hand.amax(dim=(2, 3), keepdim=True)
    by_hand = F.interpolate((by_hand - low) / (high - low), size=(32, 32), mode="bilinear", align_corners=False)
    out = net(x)
    assert torch.allclose(out.attention, by_hand.clamp(0, 1), atol=1e-6)
    assert out.attention.shape == (2, 1, 32, 32) and not out.attention.requires_grad
    assert torch.allclose(out.realness, net.classifier(activation))
    assert torch.allclose(post_hoc_attention(torch.tensor([[[[1.0, -3.0], [2.0, 0.0]]]]), (2, 2)),
                          torch.tensor([[[[1 / 3, 1.0], [2 / 3, 0.0]]]]))


def test_tam_enhances_the_trunk_with_its_mask_and_returns_the_channel_mean():
    torch.manual_seed(0)
    net = AttentiveDiscriminator(3, ndf=4, norm="instance", attention="tam")
    x = torch.randn(1, 3, 32, 32)
    features = net.extractor(x)
    trunk = net.trunk(features)
    mask = torch.sigmoid(F.interpolate(net.mask(features), size=trunk.shape[-2:], mode="bilinear", align_corners=False))
    assert features.shape[-1] == 16 and trunk.shape == mask.shape == (1, 16, 8, 8)
    out = net(x)
    assert torch.allclose(out.realness, net.classifier((mask + 1) * trunk), atol=1e-6)
    expected = F.interpolate(mask.mean(1, keepdim=True), size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(out.attention, expected, atol=1e-6)


def test_rhp_and_alpha_joins_by_hand():
    x = torch.tensor([[[[0.5, -1.0]]]]).expand(1, 3, 1, 2)
    m = torch.tensor([[[[0.0, 0.5]]]])
    assert torch.allclose(join(x, m, "rhp"), torch.tensor([0.5, -1.5]).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    alpha = join(x, m, "alpha")
    assert alpha.shape == (1, 4, 1, 2) and torch.equal(alpha[:, 3:], m) and torch.equal(alpha[:, :3], x)


def geometry(resized: int, left: int, top: int, crop: int, flip: bool) -> torch.Tensor:
    return torch.tensor([[resized, resized, left, top, crop, crop, float(flip)]])


def test_bank_starts_at_ones_and_returns_a_map_where_its_crop_was():
    bank = AttentionBank(bank_size=16)
    index = torch.tensor([7])
    first = bank.read(index, geometry(32, 8, 8, 16, False), (16, 16))
    assert torch.equal(first, torch.ones(1, 1, 16, 16))
    # A map that is 0 on the crop's left half, 1 on its right half; written from a flipped crop.
    seen = torch.zeros(1, 1, 16, 16)
    seen[..., 8:] = 1.0
    bank.write(index, geometry(32, 8, 8, 16, True), seen)
    # The same crop, unflipped: the flip is undone, so the left half is now 1.
    again = bank.read(index, geometry(32, 8, 8, 16, False), (16, 16))
    assert torch.allclose(again[..., 2:-2, 1:6], torch.ones(1, 1, 12, 5), atol=1e-5)
    assert torch.allclose(again[..., 2:-2, 10:15], torch.zeros(1, 1, 12, 5), atol=1e-5)
    # A crop shifted right by 8 px sees the stored right part at its left, and ones (never seen) on the right.
    shifted = bank.read(index, geometry(32, 16, 8, 16, False), (16, 16))
    assert shifted[0, 0, 8, 2].item() == pytest.approx(0.0, abs=1e-5)
    assert shifted[0, 0, 8, 14].item() == pytest.approx(1.0, abs=1e-5)
    assert bank.read(torch.tensor([3]), geometry(32, 0, 0, 32, False), (8, 8)).min() == 1.0  # another image


def test_bank_survives_a_checkpoint_and_the_model_feeds_it(tmp_path):
    opt = parse_train_options(["--model", "guidegan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--crop_size", "32", "--load_size", "32"])
    torch.manual_seed(0)
    model = create_model("guidegan", opt, torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    batch = unpaired_batch()
    batch["A_index"], batch["B_index"] = torch.tensor([4]), torch.tensor([2])
    batch["A_geometry"] = batch["B_geometry"] = geometry(32, 0, 0, 32, False)
    model.train_step(batch)
    assert torch.equal(model.feeding["A"], torch.ones(1, 1, 32, 32))  # first visit
    stored = model.given["A"]
    model.train_step(batch)
    second = model.feeding["A"]
    assert not torch.equal(second, torch.ones_like(second))
    assert torch.allclose(second, F.interpolate(F.interpolate(stored, size=(32, 32), mode="bilinear"), size=(32, 32)),
                          atol=0.15)  # the stored map (through the 32-cell bank)
    state = model.extra_state()
    other = create_model("guidegan", opt, torch.device("cpu"))
    other.load_extra_state(state)
    assert torch.equal(other.banks["A"].maps[4], model.banks["A"].maps[4]) and list(other.banks["A"].maps) == [4]
    model.set_mode(False)
    model.is_train = False
    with torch.no_grad():
        model.set_input(batch)
        model.test()
    assert torch.equal(model.feeding["A"], torch.ones(1, 1, 32, 32))  # test time: all ones


def test_bank_stores_the_maps_every_process_wrote(monkeypatch):
    """Under torchrun the next visit of an image may come from another process: each process
    stores what all of them pasted (the exchange is simulated: another rank wrote image 7)."""
    from util import distributed

    opt = parse_train_options(["--model", "guidegan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--crop_size", "32", "--load_size", "32"])
    torch.manual_seed(0)
    model = create_model("guidegan", opt, torch.device("cpu"))
    elsewhere = torch.full((1, 1, 32, 32), 0.25)
    monkeypatch.setattr(distributed, "all_gather_objects",
                        lambda mine: [mine, ([7], torch.full((1, 1, opt.bank_size, opt.bank_size), 0.25))])
    model.batch_keys = {"A": (torch.tensor([4]), geometry(32, 0, 0, 32, False))}
    model.remember("A", torch.full((1, 1, 32, 32), 0.75))
    bank = model.banks["A"]
    assert sorted(bank.maps) == [4, 7]
    whole = geometry(32, 0, 0, 32, False)
    assert torch.allclose(bank.read(torch.tensor([7]), whole, (32, 32)), elsewhere)
    assert torch.allclose(bank.read(torch.tensor([4]), whole, (32, 32)), torch.full((1, 1, 32, 32), 0.75))


def test_unpaired_guidegan_trains_resumes_and_tests_with_the_maps(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4, size=(40, 36))
    run_args = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--model", "guidegan", "--gpu_ids", "-1",
                "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--no_progress", "--name", "gg",
                "--d_attention", "tam", "--join", "alpha"]
    common = [*run_args, "--load_size", "36", "--num_threads", "0", "--display_id", "0", "--print_freq", "2",
              "--display_freq", "4", "--n_epochs_decay", "0"]
    assert run_script("train.py", *common, "--n_epochs", "1").returncode == 0
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train")
    assert resumed.returncode == 0 and "at epoch 2, position 0" in resumed.stdout, resumed.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "ckpt" / "gg" / "latest.pt", weights_only=True)
    banks = checkpoint["state"]["extra"]["banks"]
    assert set(banks) == {"A", "B"} and sorted(banks["A"]["maps"]) == [0, 1, 2, 3]
    test = run_script("test.py", *run_args, "--results_dir", tmp_path / "res")
    assert test.returncode == 0, test.stderr[-3000:]
    page = tmp_path / "res" / "gg" / "test_latest" / "index.html"
    html = page.read_text()
    for name in ("real_A", "fake_B", "rec_A", "d_attention_A", "d_attention_real_B", "guide_A"):
        assert f"_{name}.png" in html, name
    visuals = json.loads((page.parent / "results.json").read_text())["rows"][0]["visuals"]
    assert visuals["d_attention_A"]["kind"] == "attention" and visuals["d_attention_A"]["source"] == "A"


def test_paired_guidegan_trains_resumes_and_tests_on_aligned_data(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for phase in ("train", "test"):
        for i in range(3):
            write_image(tmp_path / "data" / phase / f"{i}.png", rng.integers(0, 255, (36, 72, 3), dtype=np.uint8))
    run_args = ["--dataroot", tmp_path / "data", "--checkpoints_dir", tmp_path / "ckpt", "--model", "guidegan_paired",
                "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "unet_32", "--crop_size", "32", "--no_progress",
                "--name", "pg"]
    common = [*run_args, "--load_size", "36", "--num_threads", "0", "--display_id", "0", "--print_freq", "1",
              "--display_freq", "3", "--n_epochs_decay", "0"]
    assert run_script("train.py", *common, "--n_epochs", "1").returncode == 0
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "ckpt" / "pg" / "loss_log.jsonl").read_text().splitlines()]
    assert {"G_GAN", "G_L1", "D"} <= set(log[-1]["losses"])
    test = run_script("test.py", *run_args, "--results_dir", tmp_path / "res")
    assert test.returncode == 0, test.stderr[-3000:]
    html = (tmp_path / "res" / "pg" / "test_latest" / "index.html").read_text()
    for name in ("real_A", "fake_B", "real_B", "d_attention_A", "d_attention_real_B", "guide_A"):
        assert f"_{name}.png" in html, name


def test_paper_defaults():
    unpaired = parse_train_options(["--model", "guidegan"])
    assert (unpaired.d_attention, unpaired.join, unpaired.lambda_gan, unpaired.lambda_A, unpaired.gan_mode) == (
        "pha", "rhp", 10.0, 10.0, "lsgan")
    assert (unpaired.netG, unpaired.norm, unpaired.lambda_identity, unpaired.n_epochs, unpaired.n_epochs_decay) == (
        "resnet_9blocks", "instance", 0.0, 50, 50)
    paired = parse_train_options(["--model", "guidegan_paired"])
    assert (paired.netG, paired.norm, paired.gan_mode, paired.lambda_gan, paired.lambda_L1) == (
        "unet_256", "instance", "lsgan", 10.0, 10.0)


def test_no_map_control_ignores_the_map_and_keeps_the_networks():
    image = torch.rand(2, 3, 8, 8)
    assert torch.equal(join(image, torch.rand(2, 1, 8, 8), "none"), image)
    opt = parse_train_options(["--model", "guidegan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--join", "none"])
    model = create_model("guidegan", opt, torch.device("cpu"))
    first = next(m for m in model.networks["G_A"].modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 3 and isinstance(model.networks["D_A"].network, AttentiveDiscriminator)


def paired_at_test_time(tmp_path, *extra):
    opt = parse_test_options(["--model", "guidegan_paired", "--gpu_ids", "-1", "--ngf", "4", "--netG", "unet_32",
                              "--crop_size", "32", "--load_size", "32", "--dataroot", str(tmp_path), *extra])
    torch.manual_seed(0)
    return create_model("guidegan_paired", opt, torch.device("cpu"))


def test_test_map_mean_feeds_the_level_the_run_stored(tmp_path, capsys):
    stored = {"A": {"bank_size": 4, "maps": {0: torch.full((1, 4, 4), 0.2), 1: torch.full((1, 4, 4), 0.6)}}}
    checkpoint = {"state": {"extra": {"banks": stored}}, "ranks": []}
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    outputs = {}
    for test_map in ("ones", "mean"):
        model = paired_at_test_time(tmp_path, "--test_map", test_map)
        model.prepare_from_checkpoint(checkpoint)
        model.set_mode(False)
        model.set_input({"A": image, "B": image, "A_paths": ["a.png"], "B_paths": ["b.png"]})
        model.test()
        level = 1.0 if test_map == "ones" else 0.4
        assert torch.allclose(model.feeding["A"], torch.full((1, 1, 32, 32), level))
        translator = model.inference_module("AtoB").eval()
        with torch.no_grad():
            outputs[test_map] = translator(image)[0]
        assert torch.allclose(outputs[test_map], model.fake_B, atol=1e-5)
    # the U-Net is not invariant to the constant: the two test maps give different translations
    assert not torch.allclose(outputs["ones"], outputs["mean"], atol=1e-4)
    # checkpoints from before the bank was global kept it per process
    model = paired_at_test_time(tmp_path, "--test_map", "mean")
    model.prepare_from_checkpoint({"state": {"extra": {}}, "ranks": [{"state": {"extra": {"banks": stored}}}]})
    assert model.test_levels == pytest.approx({"A": 0.4})
    with pytest.raises(UserError, match="--test_map ones"):
        paired_at_test_time(tmp_path, "--test_map", "mean").prepare_from_checkpoint({"state": {"extra": {}}, "ranks": []})
    # mean is the paired model's default (measured better on maps); a checkpoint without maps then
    # tests on ones and says so, where an explicit --test_map mean is refused above
    default = paired_at_test_time(tmp_path)
    assert default.opt.test_map == "mean"
    default.prepare_from_checkpoint({"state": {"extra": {}}, "ranks": []})
    assert default.test_levels == {} and "all-ones maps are used" in capsys.readouterr().out
    assert parse_test_options(["--model", "guidegan", "--gpu_ids", "-1"]).test_map == "ones"


def test_a_constant_map_is_neutral_for_the_unpaired_resnet():
    """Instance norm after the first convolution removes RHP's constant scale and alpha's constant
    channel: the unpaired generator's output does not depend on a flat map's level."""
    for how in ("rhp", "alpha"):
        opt = parse_train_options(["--model", "guidegan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                                   "resnet_6blocks", "--join", how])
        torch.manual_seed(0)
        generator = create_model("guidegan", opt, torch.device("cpu")).networks["G_A"].network.eval()
        image = torch.rand(1, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            low, high = (generator(join(image, torch.full((1, 1, 32, 32), level), how)) for level in (0.3, 1.0))
        assert torch.allclose(low, high, atol=1e-4), how
