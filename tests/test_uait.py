"""UAIT: Eq. (1) and the cycle by hand, the two stages, the ablations, and a kill/resume/test run."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from torch import nn

from models import create_model
from models.attention import UAITAttentionNetwork
from models.networks import SwitchableInstanceNorm2d
from models.runtime import NetworkRunner
from options import parse_train_options
from tests.conftest import make_unaligned, run_script
from tests.test_end_to_end import progress_of, start_and_kill
from tests.test_precision import unpaired_batch
from util.errors import UserError

TINY = ["--model", "uait", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--ngf_attention", "4", "--netG", "resnet_6blocks",
        "--crop_size", "32", "--load_size", "32", "--pool_size", "0"]


def uait(*extra: str):
    torch.manual_seed(0)
    model = create_model("uait", parse_train_options([*TINY, *extra]), torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    return model


class Constant(nn.Module):
    """Returns a fixed tensor (per sample), to check the equations by hand."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value
        self.weight = nn.Parameter(torch.zeros(1))  # so that optimisers and DDP have something

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], *self.value.shape[1:]) + 0 * self.weight


def test_paper_defaults():
    opt = parse_train_options(["--model", "uait"])
    assert (opt.ngf, opt.ngf_attention, opt.netG, opt.norm, opt.gan_mode) == (32, 32, "resnet_9blocks", "instance", "lsgan")
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity) == (10.0, 10.0, 0.0)
    assert (opt.lr, opt.beta1, opt.n_epochs, opt.n_epochs_decay, opt.batch_size) == (0.0001, 0.5, 50, 50, 1)
    assert (opt.load_size, opt.crop_size, opt.switch_epoch, opt.tau) == (286, 256, 30, 0.1)
    assert opt.freeze_attention and opt.d_input == "foreground" and opt.fake_foreground == "generator"
    assert opt.attention_head == "authors"  # as the authors ran it: the measured choice (docs/benchmark.md)
    model = uait()
    layers = list(model.networks["D_A"].network.model)
    assert isinstance(layers[1], SwitchableInstanceNorm2d)  # Appendix A: norm on every layer but the last


@pytest.mark.parametrize("head", UAITAttentionNetwork.HEADS)
@pytest.mark.parametrize("side", [32, 36, 64, 100])
def test_attention_network_keeps_any_size_divisible_by_4(side, head):
    net = UAITAttentionNetwork(3, ngf=4, head=head)
    out = net(torch.rand(1, 3, side, side + 4))
    assert out.shape == (1, 1, side, side + 4) and 0 <= out.min() and out.max() <= 1


def kernels_after_upsampling(net: UAITAttentionNetwork) -> list[int]:
    layers = list(net.model)
    first_up = next(i for i, layer in enumerate(layers) if isinstance(layer, nn.Upsample))
    return [layer.kernel_size[0] for layer in layers[first_up:] if isinstance(layer, nn.Conv2d)]


def test_attention_head_paper_or_as_the_authors_ran_it():
    assert kernels_after_upsampling(UAITAttentionNetwork(3, 4, "paper")) == [3, 3, 7]
    authors = UAITAttentionNetwork(3, 4, "authors")
    assert kernels_after_upsampling(authors) == [1, 1, 1]
    # 1x1 layers after nearest up-sampling: every 4x4 block of the mask is one value.
    mask = authors(torch.rand(1, 3, 32, 32))[0, 0]
    blocks = mask.unfold(0, 4, 4).unfold(1, 4, 4).reshape(8, 8, 16)
    assert torch.allclose(blocks, blocks[..., :1].expand_as(blocks))
    # same layer indices: only kernel shapes differ between the heads' checkpoints
    assert UAITAttentionNetwork(3, 4, "paper").state_dict().keys() == authors.state_dict().keys()
    model = uait("--attention_head", "authors")
    assert kernels_after_upsampling(model.networks["A_A"].network) == [1, 1, 1]
    assert model.architecture()["attention_head"] == "authors"


def test_training_the_attention_behind_a_thresholded_generator_output_is_refused():
    with pytest.raises(UserError, match="--fake_foreground fused"):
        parse_train_options([*TINY, "--no_freeze_attention"])
    for fine in (["--fake_foreground", "fused"], ["--d_input", "whole"]):
        assert not parse_train_options([*TINY, "--no_freeze_attention", *fine]).freeze_attention


def test_fusion_and_cycle_through_the_other_attention_network_by_hand():
    model = uait()
    s = torch.full((1, 3, 32, 32), 0.5)
    constants = {"G_A": torch.full((1, 3, 1, 1), -1.0), "A_A": torch.full((1, 1, 1, 1), 0.25),
                 "G_B": torch.full((1, 3, 1, 1), 1.0), "A_B": torch.full((1, 1, 1, 1), 0.75)}
    for name, value in constants.items():
        model.networks[name] = NetworkRunner(Constant(value))
    model.set_input({**unpaired_batch(), "A": s})
    model.forward()
    fake = 0.25 * -1.0 + 0.75 * 0.5  # s' = A_S(s) F(s) + (1 - A_S(s)) s
    assert torch.allclose(model.fake_B, torch.full_like(s, fake))
    rec = 0.75 * 1.0 + 0.25 * fake  # s'' = A_T(s') F_T->S(s') + (1 - A_T(s')) s'
    assert torch.allclose(model.rec_A, torch.full_like(s, rec))


def capture_inputs(runner: NetworkRunner) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    runner.network.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


def test_discriminators_see_whole_images_then_the_thresholded_foreground():
    model = uait("--switch_epoch", "1", "--tau", "0.5")  # an untrained attention map is about 0.5 everywhere
    batch = unpaired_batch()
    seen = capture_inputs(model.networks["D_A"])
    model.on_epoch_start(1)
    model.train_step(batch)
    # stage 1, G step then D step: fake_B, real_B, fake_B (pool off)
    assert torch.equal(seen[1], batch["B"]) and torch.allclose(seen[0], model.fake_B) and torch.allclose(seen[2], model.fake_B)
    assert all(m.enabled for m in model.networks["D_A"].modules() if isinstance(m, SwitchableInstanceNorm2d))
    seen.clear()
    model.on_epoch_start(2)
    model.train_step(batch)
    tau = model.opt.tau
    real_mask = (model.networks["A_B"](batch["B"]) >= tau).float()
    fake_mask = (model.att_A >= tau).float()
    generator_output = model.out_A.contents[:, 0]
    assert 0 < real_mask.mean() < 1 and 0 < fake_mask.mean() < 1, "the test needs masks that cut something"
    assert torch.allclose(seen[1], batch["B"] * real_mask)
    assert torch.allclose(seen[0], generator_output * fake_mask) and torch.allclose(seen[2], generator_output * fake_mask)
    assert not any(m.enabled for m in model.networks["D_A"].modules() if isinstance(m, SwitchableInstanceNorm2d))


def test_fused_fake_foreground_option_masks_s_prime():
    model = uait("--switch_epoch", "0", "--fake_foreground", "fused")
    seen = capture_inputs(model.networks["D_A"])
    model.on_epoch_start(1)
    model.train_step(unpaired_batch())
    assert torch.allclose(seen[0], model.fake_B * (model.att_A >= model.opt.tau).float())


def attention_weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for name in ("A_A", "A_B") for p in model.networks[name].parameters()]


def changed(before: list[torch.Tensor], model) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, attention_weights(model)))


def test_attention_trains_before_the_switch_and_is_frozen_after_it():
    model = uait("--switch_epoch", "1")
    model.on_epoch_start(1)
    before = attention_weights(model)
    model.train_step(unpaired_batch())
    assert changed(before, model)
    model.on_epoch_start(2)
    before, generator = attention_weights(model), [p.detach().clone() for p in model.networks["G_A"].parameters()]
    model.train_step(unpaired_batch())
    assert not changed(before, model)
    assert any(not torch.equal(a, b) for a, b in zip(generator, model.networks["G_A"].parameters()))
    unfrozen = uait("--switch_epoch", "1", "--no_freeze_attention", "--fake_foreground", "fused")
    unfrozen.on_epoch_start(2)
    before = attention_weights(unfrozen)
    unfrozen.train_step(unpaired_batch())
    assert changed(before, unfrozen)


@pytest.mark.parametrize("kept", ["source", "target"])
def test_one_attention_network_stage_2_discriminators_see_real_and_fake_alike(kept):
    """Ours-As / Ours-At: the side without a network has an all-ones mask; a discriminator must not
    see its real masked and its fake whole (or the reverse)."""
    model = uait("--switch_epoch", "0", "--tau", "0.5", "--attention_networks", kept)
    network = model.networks["A_A" if kept == "source" else "A_B"]
    network.network.model[-2].bias.data.fill_(0.0)
    network.network.model[-2].weight.data.normal_(0, 1.0)  # a mask that cuts: about half below tau
    seen = {name: capture_inputs(model.networks[name]) for name in ("D_A", "D_B")}
    model.on_epoch_start(1)
    batch = unpaired_batch()
    model.train_step(batch)
    attended = model.att_A if kept == "source" else model.att_B
    assert 0.1 < float((attended < 0.5).float().mean()) < 0.9, "the test needs a mask that cuts something"
    # D step (pool off): real then fake, both whole, both with instance norm
    for name, real in (("D_A", batch["B"]), ("D_B", batch["A"])):
        assert torch.equal(seen[name][1], real)
        assert float((seen[name][2] == 0).float().mean()) < 0.01, name
    assert all(m.enabled for m in model.networks["D_A"].modules() if isinstance(m, SwitchableInstanceNorm2d))
    assert not any(p.requires_grad for p in network.parameters())  # still frozen in stage 2


def test_pool_keeps_image_and_mask_together():
    model = uait("--switch_epoch", "0", "--pool_size", "2")
    model.on_epoch_start(1)
    pairs_in = []
    seen = capture_inputs(model.networks["D_A"])
    for step in range(8):
        torch.manual_seed(step)
        batch = unpaired_batch()
        batch["A"] = torch.rand_like(batch["A"]) * 2 - 1
        model.train_step(batch)
        pairs_in.append(torch.cat([model.out_A.contents[:, 0], model.att_A], 1).detach())
        # what D_A judged as fake in the D step: some stored image masked by that image's own mask
        judged = seen[-1]
        assert any(torch.allclose(judged, pair[:, :3] * (pair[:, 3:] >= model.opt.tau).float()) for pair in pairs_in)
    for pooled in model.fake_B_pool.images:
        assert any(torch.equal(pooled, pair) for pair in pairs_in)


def test_ablations_map_to_networks_and_cycle():
    source_only = uait("--attention_networks", "source")
    assert "A_A" in source_only.networks and "A_B" not in source_only.networks
    source_only.set_input(unpaired_batch())
    source_only.forward()
    assert torch.equal(source_only.att_B, torch.ones_like(source_only.att_B))  # T side translates the whole image
    cycle_att = uait("--cycle_attention", "source")
    for name, value in {"A_A": 0.25, "A_B": 0.75}.items():
        cycle_att.networks[name] = NetworkRunner(Constant(torch.full((1, 1, 1, 1), value)))
    cycle_att.set_input(unpaired_batch())
    cycle_att.forward()
    content = cycle_att.networks["G_B"](cycle_att.fake_B)
    expected = 0.25 * content + 0.75 * cycle_att.fake_B  # reuses A_S(s) = 0.25, not A_T(s') = 0.75
    assert torch.allclose(cycle_att.rec_A, expected, atol=1e-6)
    whole = uait("--switch_epoch", "0", "--d_input", "whole")
    whole.on_epoch_start(1)
    image = torch.rand(1, 3, 4, 4)
    assert torch.equal(whole.discriminator_view(image, torch.zeros(1, 1, 4, 4)), image)


@pytest.mark.slow
def test_train_across_the_switch_kill_resume_and_test(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4, size=(40, 36))
    run_args = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--model", "uait", "--gpu_ids", "-1",
                "--ngf", "4", "--ngf_attention", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--no_progress",
                "--switch_epoch", "1"]
    common = [*run_args, "--ndf", "4", "--load_size", "36", "--num_threads", "0", "--display_id", "0", "--print_freq", "1",
              "--display_freq", "2", "--n_epochs", "2", "--n_epochs_decay", "1", "--save_latest_freq", "1", "--pool_size", "3"]
    whole = run_script("train.py", *common, "--name", "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "UAIT stage 2 from epoch 2" in whole.stdout
    code = start_and_kill([str(a) for a in [*common, "--name", "cut"]], tmp_path / "ckpt" / "cut" / "latest.pt", 6)
    assert code == -signal.SIGKILL and 6 <= progress_of(tmp_path / "ckpt" / "cut" / "latest.pt")["total_iters"] < 12
    resumed = run_script("train.py", *common, "--name", "cut", "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(tmp_path / "ckpt" / "whole" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "ckpt" / "cut" / "latest.pt", weights_only=True)
    for net, weights in a["state"]["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, b["state"]["networks"][net][key]), (net, key)
    for name in ("fake_A", "fake_B"):
        assert all(torch.equal(x, y) for x, y in zip(a["ranks"][0]["state"]["pools"][name]["images"],
                                                      b["ranks"][0]["state"]["pools"][name]["images"]))
    test = run_script("test.py", *run_args, "--name", "whole", "--results_dir", tmp_path / "res")
    assert test.returncode == 0, test.stderr[-3000:]
    page = tmp_path / "res" / "whole" / "test_latest" / "index.html"
    html = page.read_text()
    for name in ("real_A", "fake_B", "rec_A", "attention_A", "attention_B", "d_mask_A", "d_mask_B"):
        assert f"_{name}.png" in html, name
    kinds = {v["kind"] for v in json.loads((page.parent / "results.json").read_text())["rows"][0]["visuals"].values()}
    assert {"real", "fake", "rec", "attention", "mask"} <= kinds


def test_a_checkpoint_of_either_head_tests_and_a_resume_names_its_head():
    from options import parse_test_options

    for trained, other in (("paper", "authors"), ("authors", "paper")):
        saved = {name: net.state_dict() for name, net in uait("--attention_head", trained).networks.items()}
        opt = parse_test_options([*[a for a in TINY if a not in ("--pool_size", "0")], "--attention_head", other])
        tester = create_model("uait", opt, torch.device("cpu"))
        tester.prepare_from_checkpoint({"state": {"networks": saved}, "architecture": {}})
        assert tester.opt.attention_head == trained
        tester.load_networks(saved, tester.inference_networks)
        assert kernels_after_upsampling(tester.networks["A_A"].network) == ([3, 3, 7] if trained == "paper" else [1, 1, 1])
        resumer = uait("--attention_head", other)
        with pytest.raises(UserError, match=f"--attention_head {trained}"):
            resumer.load_networks(saved, list(resumer.networks))
