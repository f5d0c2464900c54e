"""The benchmark's scaling rules: every PatchGAN-shaped discriminator of the family takes its depth
from --netD/--n_layers_D, so that it sees the papers' share of the image side at any size; the
at-scale script's calls are valid benchmark and train.py command lines."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from models import create_model, networks
from models.attention import pooled_layers
from options.train_options import parse_train_options
from scripts.attention_benchmark import (
    budget_options,
    discriminator_options,
    parse_arguments,
    proportional_depth,
    summarise,
    train_arguments,
)
from tests.conftest import ROOT, make_unaligned, run_script
from util.checkpoint import load_checkpoint
from util.precision import UNRECORDED_MACHINE, add_call_time, describe_hardware
from tests.test_mask_supervision import MODELS, build


def halvings(network: nn.Module) -> int:
    return sum(1 for m in network.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2))


def discriminators(model) -> dict[str, nn.Module]:
    return {name: runner.network for name, runner in model.networks.items() if name.startswith("D")}


def test_receptive_fields_of_the_patchgan_and_the_pooled_discriminator():
    assert [networks.receptive_field(networks.patchgan_layers(depth)) for depth in (1, 2, 3, 4)] == [16, 34, 70, 142]
    assert [networks.receptive_field(pooled_layers(depth)) for depth in (2, 3)] == [46, 94]


def test_proportional_depth_keeps_the_papers_share_of_the_image_side():
    assert [proportional_depth(size) for size in (64, 128, 256, 512)] == [1, 2, 3, 4]
    for size in (64, 128, 256, 512):
        share = networks.receptive_field(networks.patchgan_layers(proportional_depth(size))) / size
        assert abs(share - 70 / 256) < 0.03


def test_benchmark_passes_the_depth_to_every_model_but_the_one_with_starGANs_discriminator():
    args = argparse.Namespace(size=128, d_field="proportional")
    assert discriminator_options("saagan", args) == ["--netD", "n_layers", "--n_layers_D", "2"]
    assert discriminator_options("attentiongan_multi", args) == []
    assert discriminator_options("saagan", argparse.Namespace(size=128, d_field="fixed")) == []


@pytest.mark.parametrize("key", sorted(MODELS))
def test_every_attention_model_discriminator_takes_its_depth_from_the_options(key, tmp_path):
    paper = discriminators(build(key, tmp_path))
    shallower = discriminators(build(key, tmp_path, "--netD", "n_layers", "--n_layers_D", "2"))
    assert paper and paper.keys() == shallower.keys()
    for name in paper:
        assert halvings(paper[name]) - halvings(shallower[name]) == 1, name
        channels = next(m for m in shallower[name].modules() if isinstance(m, nn.Conv2d)).in_channels
        assert torch.isfinite(shallower[name](torch.rand(2, channels, 32, 32))).all()


@pytest.mark.parametrize("model", ["guidegan", "cycle_gan"])
def test_guidegan_and_cycle_gan_discriminators_take_the_depth_too(model):
    common = ["--model", model, "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks",
              "--crop_size", "32", "--load_size", "32"]
    paper = discriminators(create_model(model, parse_train_options(common), torch.device("cpu")))
    opt = parse_train_options([*common, "--netD", "n_layers", "--n_layers_D", "2"])
    shallower = discriminators(create_model(model, opt, torch.device("cpu")))
    assert [halvings(paper[n]) - halvings(shallower[n]) for n in paper] == [1] * len(paper)
    output = shallower["D_A"](torch.rand(1, 3, 32, 32))
    realness = output.realness if model == "guidegan" else output
    assert realness.shape[-1] == 6  # 32 / 4 - 2: two halvings, then the two stride-1 convolutions


@pytest.mark.parametrize("args, message", [
    (["--model", "guidegan", "--d_attention", "tam", "--netD", "n_layers", "--n_layers_D", "2"], "TAM discriminator"),
    (["--model", "uait", "--netD", "pixel"], "--netD pixel: this model's discriminator is a PatchGAN"),
    (["--model", "aggan", "--netD", "pixel"], "--netD pixel: this model's discriminator is a PatchGAN"),
])
def test_discriminators_without_that_depth_refuse_it_by_name(args, message, tmp_path: Path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2)
    result = run_script("train.py", *args, "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--gpu_ids", "-1",
                        "--crop_size", "32", "--load_size", "32")
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_summary_states_the_discriminator_rule_and_the_training_time():
    rows = [{"benchmark": {"model": "uait", "seed": 0, "command": "train.py --model uait", "train_seconds": 3725.0,
                           "images": 13340, "hardware": "some CPU"},
             "directions": {"AtoB": {"attention": None, "background": None}}}]
    args = argparse.Namespace(dataroot="d", size=128, max_iters=13340, full_network=False, d_field="proportional")
    summary = summarise(rows, args, [])
    assert "PatchGAN depth 2 at 128 px" in summary
    assert "- uait (seed 0): 1:02:05 for 13340 images, 0.279 s/img on some CPU" in summary


def tiny_cycle_gan_run(tmp_path: Path) -> list:
    """train.py options of a one-epoch cycle_gan run on 2 + 2 images, checkpoints in tmp_path/ckpt/r."""
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2)
    return ["--model", "cycle_gan", "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--name", "r",
            "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32",
            "--load_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", "--no_progress"]


def test_a_run_resumed_on_another_machine_reports_each_machines_speed():
    machines = {"AMD EPYC, 2 cores": {"seconds": 1500.0, "images": 2500},
                "Intel Xeon, 2 cores": {"seconds": 3900.0, "images": 10840}}
    rows = [{"benchmark": {"model": "cycle_gan", "seed": 0, "command": "train.py", "train_seconds": 5400.0,
                           "images": 13340, "hardware": "Intel Xeon, 2 cores", "machines": machines},
             "directions": {"AtoB": {"attention": None, "background": None}}}]
    args = argparse.Namespace(dataroot="d", size=128, max_iters=13340, full_network=False, d_field="proportional")
    summary = summarise(rows, args, [])
    assert ("- cycle_gan (seed 0): 1:30:00 for 13340 images, resumed across machines: 0.600 s/img for 2500 images "
            "on AMD EPYC, 2 cores; 0.360 s/img for 10840 images on Intel Xeon, 2 cores") in summary


def test_call_times_add_up_per_machine_and_older_calls_count_as_unrecorded():
    first = add_call_time({}, "cpu A", 100.0, 500)
    assert first == {"cpu A": {"seconds": 100.0, "images": 500}}
    again = add_call_time(first, "cpu A", 50.0, 250, train_seconds_before=100.0, images_before=500)
    assert again == {"cpu A": {"seconds": 150.0, "images": 750}} and first["cpu A"]["images"] == 500  # no mutation
    older = add_call_time({}, "cpu B", 30.0, 100, train_seconds_before=200.0, images_before=1000)
    assert older == {UNRECORDED_MACHINE: {"seconds": 200.0, "images": 1000}, "cpu B": {"seconds": 30.0, "images": 100}}


def test_training_records_its_machine_and_a_resume_adds_to_it(tmp_path):
    common = tiny_cycle_gan_run(tmp_path)
    assert run_script("train.py", *common).returncode == 0
    machine = describe_hardware(torch.device("cpu"))
    first = load_checkpoint(tmp_path / "ckpt" / "r" / "latest.pt")["progress"]
    assert list(first["machines"]) == [machine] and first["machines"][machine]["images"] == 2
    assert run_script("train.py", *common, "--n_epochs", "2", "--continue_train").returncode == 0
    resumed = load_checkpoint(tmp_path / "ckpt" / "r" / "latest.pt")["progress"]
    assert list(resumed["machines"]) == [machine] and resumed["machines"][machine]["images"] == 4
    assert abs(resumed["machines"][machine]["seconds"] - resumed["train_seconds"]) <= 0.2


def test_the_at_scale_script_makes_valid_benchmark_and_training_commands():
    env = {**os.environ, "PYTHON": "echo"}
    printed = subprocess.run(["bash", "scripts/benchmark_at_scale.sh", "all"], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert len(printed) == 11  # 9 horse2zebra benchmark calls (the headline, 4 mask settings, 4 controls), a, b
    switches, heads = {}, {}
    for line in printed:
        args, extra = parse_arguments(shlex.split(line)[1:])
        assert args.size == 128 and args.d_field == "proportional"
        for model in args.model:
            adapted = budget_options(model, args) if model == "uait" else []  # saagan's would train a CAM classifier
            opt = parse_train_options(train_arguments(model, 0, args, adapted, extra))
            assert (opt.crop_size, opt.netD, opt.n_layers_D, opt.save_epoch_freq) == (128, "n_layers", 2, 1)
            if model == "uait" and str(args.dataroot).endswith("horse2zebra"):
                switches[args.prefix], heads[args.prefix] = opt.switch_epoch, opt.attention_head
    # The budget's rule puts UAIT's switch at half the epochs; the stage-length control's own value wins.
    assert switches == {"h128": 5, "h128_cycle1": 5, "h128_cycle1s8": 8, "h128_cycle1paper": 5}
    # Only the head control leaves the authors' attention head, the default.
    assert heads == {"h128": "authors", "h128_cycle1": "authors", "h128_cycle1s8": "authors", "h128_cycle1paper": "paper"}
    seeded = subprocess.run(["bash", "scripts/benchmark_at_scale.sh", "a", "s128_overlapping_aggan"], cwd=ROOT,
                            env={**env, "SEEDS": "1 2"}, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(seeded) == 1
    args, _ = parse_arguments(shlex.split(seeded[0])[1:])
    assert args.seeds == [1, 2] and args.model == ["aggan"] and args.backgrounds == "overlapping"
    bad_seed = subprocess.run(["bash", "scripts/benchmark_at_scale.sh", "a"], cwd=ROOT, env={**env, "SEEDS": "1 x"},
                              capture_output=True, text=True)
    assert bad_seed.returncode == 2 and "SEEDS" in bad_seed.stderr and bad_seed.stdout == ""
    no_target = subprocess.run(["bash", "scripts/benchmark_at_scale.sh"], cwd=ROOT, capture_output=True, text=True)
    assert no_target.returncode == 2 and "usage" in no_target.stderr


def test_resuming_with_another_discriminator_depth_names_the_option(tmp_path):
    common = tiny_cycle_gan_run(tmp_path)
    assert run_script("train.py", *common).returncode == 0
    resumed = run_script("train.py", *common, "--n_epochs", "2", "--continue_train", "--netD", "n_layers",
                         "--n_layers_D", "2")
    assert resumed.returncode == 2 and "--netD basic" in resumed.stderr and "Traceback" not in resumed.stderr
