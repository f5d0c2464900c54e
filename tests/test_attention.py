"""AGGAN and AttentionGAN: the equations on tiny tensors, published weights, train/resume/test."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import create_model
from models.attention import (
    AttentionGeneratorII,
    AttentionMonitor,
    Curriculum,
    fuse_multi,
    fuse_single,
    mask_image_pair,
    tv_loss,
)
from models.attentiongan_model import convert_released_generator
from options import parse_train_options
from tests.conftest import make_unaligned, run_script


def test_eq1_fusion_by_hand():
    content = torch.tensor([[[[0.5, -1.0]]]]).expand(1, 3, 1, 2)
    mask = torch.tensor([[[[0.25, 1.0]]]])
    image = torch.tensor([[[[1.0, 0.0]]]]).expand(1, 3, 1, 2)
    # pixel 0: 0.5 * 0.25 + 1 * 0.75 = 0.875; pixel 1: -1 * 1 + 0 * 0 = -1
    expected = torch.tensor([0.875, -1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert torch.allclose(fuse_single(content, mask, image), expected)


def test_eq2_fusion_of_n_masks_and_contents_by_hand():
    # n = 3: two foreground masks + background (last), one pixel, one channel.
    contents = torch.tensor([0.2, -0.6]).view(1, 2, 1, 1, 1)
    masks = torch.tensor([0.5, 0.3, 0.2]).view(1, 3, 1, 1)
    image = torch.tensor([0.9]).view(1, 1, 1, 1)
    expected = 0.2 * 0.5 + (-0.6) * 0.3 + 0.9 * 0.2
    assert fuse_multi(contents, masks, image).item() == pytest.approx(expected)


def test_scheme_ii_masks_are_a_softmax_over_n_channels_with_background_last():
    torch.manual_seed(0)
    net = AttentionGeneratorII(3, 3, ngf=4, n_blocks=1, n_masks=5)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = net(x)
    assert out.masks.shape == (2, 5, 16, 16) and out.contents.shape == (2, 4, 3, 16, 16)
    assert torch.allclose(out.masks.sum(1), torch.ones(2, 16, 16), atol=1e-6)
    logits = net.attention_decoder(net.encoder(x))
    assert torch.allclose(out.masks, torch.softmax(logits, 1))
    assert torch.allclose(out.foreground, 1 - out.masks[:, -1:])
    by_hand = sum(out.contents[:, i] * out.masks[:, i : i + 1] for i in range(4)) + x * out.masks[:, 4:5]
    assert torch.allclose(out.image, by_hand, atol=1e-6)


def test_tv_loss_by_hand():
    mask = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
    # horizontal |1-0| + |0.5-0.5| = 1; vertical |0.5-0| + |0.5-1| = 1
    assert tv_loss(mask).item() == pytest.approx(2.0)
    assert tv_loss(torch.cat([mask, torch.zeros_like(mask)])).item() == pytest.approx(1.0)  # batch mean


def test_curriculum_weights_around_epoch_10():
    curriculum = Curriculum(enabled=True, epochs=10, early=0.01, late=0.5)
    assert curriculum.weights(9) == (0.01, 0.99)
    assert curriculum.weights(10) == (0.01, 0.99)  # epochs are 1-based: the 10th epoch is still early
    assert curriculum.weights(11) == (0.5, 0.5)
    assert Curriculum(enabled=False).weights(1) == (1.0, 1.0)


def test_attention_guided_discriminator_sees_the_mask_image_pair():
    pair = mask_image_pair(torch.full((2, 1, 4, 4), 0.3), torch.full((2, 3, 4, 4), -0.5))
    assert pair.shape == (2, 4, 4, 4) and torch.all(pair[:, 0] == 0.3) and torch.all(pair[:, 1:] == -0.5)

    opt = parse_train_options(
        ["--model", "aggan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--pool_size", "0"]
    )
    model = create_model("aggan", opt, torch.device("cpu"))
    model.setup()
    first_conv = next(m for m in model.networks["D_AA"].modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 4
    seen = []
    model.networks["D_AA"].register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    model.set_input({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    model.optimize_parameters()
    # G step judges [att_A, fake_B]; D step: real pair [att_A, real_B] (paper), then the pooled fake pair.
    assert torch.allclose(seen[0], torch.cat([model.att_A, model.fake_B], 1).detach(), atol=1e-6)
    assert torch.allclose(seen[1], torch.cat([model.att_A, model.real_B], 1).detach(), atol=1e-6)


def test_curriculum_reaches_the_training_step():
    opt = parse_train_options(["--model", "aggan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks"])
    model = create_model("aggan", opt, torch.device("cpu"))
    model.setup()
    model.set_input({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    model.on_epoch_start(10)
    assert model.optimize_parameters()["r"] == 0.01
    model.on_epoch_start(11)
    assert model.optimize_parameters()["r"] == 0.5


def test_paper_defaults():
    aggan = parse_train_options(["--model", "aggan"])
    assert (aggan.lr, aggan.lambda_A, aggan.lambda_gan, aggan.lambda_pixel, aggan.lambda_tv) == (1e-4, 10, 0.5, 1, 1e-6)
    assert aggan.curriculum and aggan.attention_D and aggan.norm == "batch" and aggan.lambda_identity == 0
    assert aggan.netG == "resnet_6blocks" and aggan.d_first_norm and aggan.d_head == "pooled"  # Sec. III-D
    from models.attention import PooledDiscriminator

    first = list(PooledDiscriminator(4, ndf=8, norm="batch").model)[:3]
    assert isinstance(first[1], nn.BatchNorm2d)  # "the BatchNorm is used for the first C64"
    assert isinstance(list(PooledDiscriminator(4, 8, "batch", first_norm=False).model)[1], nn.Identity)
    att = parse_train_options(["--model", "attentiongan"])
    assert (att.scheme, att.n_attention, att.lambda_identity, att.lambda_A, att.gan_mode) == ("II", 10, 0.5, 10, "lsgan")
    assert not att.curriculum and not att.attention_D and att.lambda_pixel == 0 and att.lambda_tv == 0


def test_collapse_monitor_warns_only_for_a_whole_collapsed_epoch():
    monitor = AttentionMonitor()
    for value in (0.001, 0.005, 0.01):
        monitor.record("A", torch.full((1, 1, 2, 2), value))
    for value in (0.001, 0.5):
        monitor.record("B", torch.full((1, 1, 2, 2), value))
    messages = monitor.end_epoch()
    assert len(messages) == 1 and messages[0].startswith("A attention stayed near 0")
    for _ in range(3):
        monitor.record("A", torch.full((1, 1, 2, 2), 0.995))
    assert "near 1" in monitor.end_epoch()[0]
    assert monitor.end_epoch() == []


# --------------------------------------------------------------------------- published weights
class ReleasedResnetBlock(nn.Module):
    """The residual block of the authors' released generator, written from its description."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)

    def forward(self, x):
        y = F.relu(F.instance_norm(self.conv1(F.pad(x, (1, 1, 1, 1), "reflect"))))
        return x + F.instance_norm(self.conv2(F.pad(y, (1, 1, 1, 1), "reflect")))


class ReleasedGenerator(nn.Module):
    """The released scheme-II generator's layout (keys conv1 ... deconv3_attention)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, n: int = 10) -> None:
        super().__init__()
        self.n = n
        self.conv1 = nn.Conv2d(3, ngf, 7)
        self.conv2 = nn.Conv2d(ngf, ngf * 2, 3, 2, 1)
        self.conv3 = nn.Conv2d(ngf * 2, ngf * 4, 3, 2, 1)
        self.resnet_blocks = nn.Sequential(*[ReleasedResnetBlock(ngf * 4) for _ in range(n_blocks)])
        for branch, out_channels, kernel in (("content", 3 * (n - 1), 7), ("attention", n, 1)):
            setattr(self, f"deconv1_{branch}", nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, 1))
            setattr(self, f"deconv2_{branch}", nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, 1))
            setattr(self, f"deconv3_{branch}", nn.Conv2d(ngf, out_channels, kernel))

    def forward(self, x):
        h = F.relu(F.instance_norm(self.conv1(F.pad(x, (3, 3, 3, 3), "reflect"))))
        h = F.relu(F.instance_norm(self.conv2(h)))
        h = self.resnet_blocks(F.relu(F.instance_norm(self.conv3(h))))
        c = F.relu(F.instance_norm(self.deconv1_content(h)))
        c = F.relu(F.instance_norm(self.deconv2_content(c)))
        contents = torch.tanh(self.deconv3_content(F.pad(c, (3, 3, 3, 3), "reflect")))
        a = F.relu(F.instance_norm(self.deconv1_attention(h)))
        a = F.relu(F.instance_norm(self.deconv2_attention(a)))
        masks = torch.softmax(self.deconv3_attention(a), 1)
        out = sum(contents[:, 3 * i : 3 * i + 3] * masks[:, i : i + 1] for i in range(self.n - 1))
        return out + x * masks[:, self.n - 1 : self.n]


def test_released_keys_match_the_documented_list():
    keys = set(ReleasedGenerator(ngf=4, n_blocks=9).state_dict())
    expected = {
        f"{name}.{p}"
        for name in (
            "conv1",
            "conv2",
            "conv3",
            "deconv1_content",
            "deconv2_content",
            "deconv3_content",
            "deconv1_attention",
            "deconv2_attention",
            "deconv3_attention",
        )
        for p in ("weight", "bias")
    }
    expected |= {f"resnet_blocks.{i}.conv{j}.{p}" for i in range(9) for j in (1, 2) for p in ("weight", "bias")}
    assert keys == expected
    assert ReleasedGenerator().state_dict()["deconv3_content.weight"].shape == (27, 64, 7, 7)
    assert ReleasedGenerator().state_dict()["deconv3_attention.weight"].shape == (10, 64, 1, 1)


def test_released_weights_give_the_same_output():
    torch.manual_seed(1)
    released = ReleasedGenerator(ngf=8, n_blocks=9)
    for p in released.parameters():
        nn.init.normal_(p, 0, 0.1)
    ours = AttentionGeneratorII(3, 3, ngf=8, norm="instance", n_blocks=9, n_masks=10)
    ours.load_state_dict(convert_released_generator(released.state_dict()))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(x).image, released(x), atol=1e-5)


def test_released_weights_convert_and_run_in_test_py(tmp_path):
    torch.manual_seed(2)
    for side in ("A", "B"):
        torch.save(ReleasedGenerator(ngf=4).state_dict(), tmp_path / f"latest_net_G_{side}.pth")
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2, size=(32, 32), phases=("test",))
    convert = run_script("scripts/convert_attentiongan_weights.py", "--G_A", tmp_path / "latest_net_G_A.pth",
                         "--G_B", tmp_path / "latest_net_G_B.pth", "--name", "released", "--checkpoints_dir", tmp_path / "ckpt")
    assert convert.returncode == 0, convert.stderr
    test_args = ["--dataroot", data, "--name", "released", "--model", "attentiongan", "--checkpoints_dir", tmp_path / "ckpt",
                 "--results_dir", tmp_path / "res", "--gpu_ids", "-1", "--crop_size", "32", "--no_progress"]
    test = run_script("test.py", *test_args, "--ngf", "4")
    assert test.returncode == 0, test.stderr
    manifest = json.loads((tmp_path / "res" / "released" / "test_latest" / "results.json").read_text())
    assert manifest["rows"][0]["visuals"]["attention_A"]["kind"] == "attention"
    adopted = run_script("test.py", *test_args)  # without --ngf: the run's own value
    assert adopted.returncode == 0 and "options from the run: --ngf 4" in adopted.stdout, adopted.stderr
    wrong = run_script("test.py", *test_args, "--ngf", "64")  # an explicit value that does not fit
    assert wrong.returncode == 2 and "--ngf 4" in wrong.stderr


# --------------------------------------------------------------------------- train, resume, test
ATTENTION_VISUALS = {
    "aggan": ["attention_A", "content_A", "attention_B"],
    "attentiongan": ["attention_A", "background_A", "mask1_A", "content9_A", "attention_B"],
}


@pytest.mark.parametrize("model", ["aggan", "attentiongan"])
def test_train_resume_and_test_show_attention_maps(tmp_path, model):
    data = make_unaligned(tmp_path / "data", n_a=3, n_b=3, size=(40, 36))
    run_args = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--name", model, "--model", model,
                "--gpu_ids", "-1", "--ngf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--no_progress"]
    common = [*run_args, "--ndf", "4", "--load_size", "36", "--num_threads", "0", "--display_id", "0",
              "--print_freq", "1", "--display_freq", "3", "--n_epochs_decay", "0"]
    if model == "attentiongan":
        common += ["--attention_D", "--lambda_tv", "1e-6", "--lambda_pixel", "1", "--curriculum"]
    first = run_script("train.py", *common, "--n_epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "at epoch 2, position 0" in resumed.stdout
    log = [json.loads(line) for line in (tmp_path / "ckpt" / model / "loss_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 1, 1, 2, 2, 2] and all(0 <= r["losses"]["mean_att_A"] <= 1 for r in log)
    test = run_script("test.py", *run_args, "--results_dir", tmp_path / "res")
    assert test.returncode == 0, test.stderr[-3000:]
    page = tmp_path / "res" / model / "test_latest" / "index.html"
    html = page.read_text()
    for name in ATTENTION_VISUALS[model]:
        assert f"_{name}.png" in html, name
    manifest = json.loads((page.parent / "results.json").read_text())
    kinds = {v["kind"] for v in manifest["rows"][0]["visuals"].values()}
    assert {"real", "fake", "rec", "attention"} <= kinds
    from tests.browser import chromium_missing_reason, image_load_report

    if not chromium_missing_reason():
        assert all(item["naturalWidth"] > 0 for item in image_load_report(page))


def test_mask_gradient_norms_by_hand():
    from models.attention_cycle import mask_gradient_norms

    logits = torch.randn(1, 1, 4, 4, requires_grad=True)
    mask = torch.sigmoid(logits)
    weights = torch.rand(1, 1, 4, 4)
    terms = {"linear": (mask * weights).sum(), "constant": torch.tensor(2.0), "twice": 2 * (mask * weights).sum()}
    norms = mask_gradient_norms(terms, [mask])
    by_hand = float(torch.autograd.grad((mask * weights).sum(), logits, retain_graph=True)[0].norm())
    assert norms["grad_linear"] == pytest.approx(by_hand, rel=1e-5)
    assert norms["grad_twice"] == pytest.approx(2 * by_hand, rel=1e-5) and norms["grad_constant"] == 0.0


def test_mask_gradients_are_logged_every_n_steps():
    opt = parse_train_options(["--model", "aggan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG",
                               "resnet_6blocks", "--mask_gradient_freq", "2"])
    model = create_model("aggan", opt, torch.device("cpu"))
    model.setup()
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    first = model.train_step(batch)
    assert {"grad_cycle_A", "grad_pixel", "grad_G_A", "grad_G_AA", "grad_tv"} <= set(first)
    assert first["grad_pixel"] > 0 and first["grad_cycle_A"] > 0
    second = model.train_step(batch)  # not a step that measures: the latest values are repeated
    assert all(second[k] == first[k] for k in first if k.startswith("grad_"))
    third = model.train_step(batch)
    assert third["grad_pixel"] != first["grad_pixel"]
    plain = create_model("aggan", parse_train_options(["--model", "aggan", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4",
                                                       "--netG", "resnet_6blocks"]), torch.device("cpu"))
    plain.setup()
    assert not any(k.startswith("grad_") for k in plain.train_step(batch))
