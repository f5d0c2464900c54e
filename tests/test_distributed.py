"""Data-parallel training under torchrun (gloo on the CPU): sharding, one writer, exact resume."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data import EpochSampler
from models import create_model
from options import parse_train_options
from tests.conftest import ROOT, make_unaligned, resume_point, run_script

TINY = ["--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "36",
        "--display_id", "0", "--num_threads", "0", "--no_progress", "--print_freq", "2", "--display_freq", "4"]


def torchrun(nproc: int, *args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "train.py",
               *(str(a) for a in args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    for net, weights in a["state"]["networks"].items():
        for key, value in weights.items():
            other = b["state"]["networks"][net][key]
            same = torch.equal(value, other) if atol == 0 else torch.allclose(value, other, atol=atol, rtol=1e-4)
            assert same, (net, key, (value - other).abs().max())


def test_ranks_split_each_global_batch_like_one_process_with_a_bigger_batch():
    single = EpochSampler(7, shuffle=True, seed=3, epoch=2)
    ranks = [EpochSampler(7, shuffle=True, seed=3, epoch=2, rank=r, world_size=2) for r in range(2)]
    order = [index for _, index in single]
    shards = [[index for _, index in sampler] for sampler in ranks]
    assert len(shards[0]) == len(shards[1]) == 4  # 7 padded to 8 by wrapping around
    # step k of the two ranks together = positions 2k, 2k+1 of the single order
    assert [sorted(pair) for pair in zip(*shards)][:3] == [sorted(order[2 * k : 2 * k + 2]) for k in range(3)]
    assert shards[1][-1] == order[0]
    # resuming at a global position, with another number of processes
    resumed = [[i for _, i in EpochSampler(7, True, 3, epoch=2, start=4, rank=r, world_size=3)] for r in range(3)]
    assert sorted(sum(resumed, [])) == sorted(order[4:])


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ddp")
    data = make_unaligned(tmp / "data", n_a=6, n_b=5)
    common = [*TINY, "--model", "cycle_gan", "--dataroot", data, "--checkpoints_dir", tmp / "ckpt", "--n_epochs", "1",
              "--n_epochs_decay", "1", "--pool_size", "3", "--save_epoch_freq", "1"]
    whole = torchrun(2, *common, "--name", "whole")
    cut = torchrun(2, *common, "--name", "cut", "--max_iters", "4")
    shutil.copytree(tmp / "ckpt" / "cut", tmp / "ckpt" / "cut_single")
    resumed = torchrun(2, *common, "--name", "cut", "--continue_train")
    single = run_script("train.py", *common, "--name", "cut_single", "--continue_train")
    return {"tmp": tmp, "whole": whole, "cut": cut, "resumed": resumed, "single": single}


@pytest.mark.slow
def test_torchrun_trains_with_one_writer(two_process_runs):
    whole = two_process_runs["whole"]
    assert whole.returncode == 0, whole.stderr[-3000:]
    run_dir = two_process_runs["tmp"] / "ckpt" / "whole"
    assert whole.stdout.count("options saved to") == 1 and "data-parallel training: 2 processes (gloo)" in whole.stdout
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["epoch_1.pt", "epoch_2.pt", "latest.pt"]
    assert not list(run_dir.glob(".*.tmp"))
    log = (run_dir / "loss_log.txt").read_text()
    assert log.count("Training loss") == 1 and log.count("(epoch: 1, iters: 2,") == 1
    checkpoint = load(run_dir / "latest.pt")
    assert resume_point(checkpoint["progress"]) == {"epoch": 3, "position": 0, "total_iters": 12}  # 2 epochs x 6 images
    pools = [rank["state"]["pools"]["fake_A"]["images"] for rank in checkpoint["ranks"]]
    assert len(pools) == 2 and len(pools[0]) == len(pools[1]) == 3
    assert not torch.equal(pools[0][0], pools[1][0])  # each process pools its own fakes


@pytest.mark.slow
def test_torchrun_run_resumes_exactly(two_process_runs):
    cut, resumed = two_process_runs["cut"], two_process_runs["resumed"]
    assert cut.returncode == 0 and "stopping at --max_iters 4" in cut.stdout, cut.stderr[-3000:]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming cut at epoch 1, position 4" in resumed.stdout
    tmp = two_process_runs["tmp"]
    whole, again = load(tmp / "ckpt" / "whole" / "latest.pt"), load(tmp / "ckpt" / "cut" / "latest.pt")
    assert resume_point(whole["progress"]) == resume_point(again["progress"])
    assert_same_weights(whole, again)
    for rank in range(2):
        assert all(torch.equal(a, b) for a, b in zip(whole["ranks"][rank]["state"]["pools"]["fake_B"]["images"],
                                                      again["ranks"][rank]["state"]["pools"]["fake_B"]["images"]))


@pytest.mark.slow
def test_resuming_with_another_number_of_processes_says_what_changes(two_process_runs):
    single = two_process_runs["single"]
    assert single.returncode == 0, single.stderr[-3000:]
    assert "written by 2 process(es) and this run has 1" in single.stdout
    assert "image pools and random states of processes 1..1 are dropped" in single.stdout
    checkpoint = load(two_process_runs["tmp"] / "ckpt" / "cut_single" / "latest.pt")
    assert checkpoint["progress"]["total_iters"] == 4 + 2 + 6  # 4 before, the 2 left of epoch 1, then epoch 2
    assert len(checkpoint["ranks"]) == 1


@pytest.mark.slow
def test_two_processes_of_batch_one_equal_one_process_of_batch_two(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=6, n_b=5)
    common = [*TINY, "--model", "cycle_gan", "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--n_epochs", "1",
              "--n_epochs_decay", "0", "--pool_size", "0", "--max_iters", "4"]
    ddp = torchrun(2, *common, "--name", "ddp", "--batch_size", "1")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = run_script("train.py", *common, "--name", "one", "--batch_size", "2")
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = load(tmp_path / "ckpt" / "ddp" / "latest.pt"), load(tmp_path / "ckpt" / "one" / "latest.pt")
    assert resume_point(a["progress"]) == resume_point(b["progress"]) == {"epoch": 1, "position": 4, "total_iters": 4}
    assert float(a["state"]["optimizers"]["G"]["state"][0]["step"]) == 2  # two steps of two images each
    # A bias right before instance norm has a zero gradient in exact arithmetic, so Adam turns
    # float noise into +-lr steps there; it does not change what the network computes. Compare
    # every other weight, and the networks' outputs.
    for net, weights in a["state"]["networks"].items():
        for key, value in weights.items():
            if not key.endswith("bias"):
                assert torch.allclose(value, b["state"]["networks"][net][key], atol=1e-5, rtol=1e-4), (net, key)
    opt = parse_train_options(["--model", "cycle_gan", *TINY])
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    outputs = []
    for checkpoint in (a, b):
        model = create_model("cycle_gan", opt, torch.device("cpu"))
        model.load_networks(checkpoint["state"]["networks"], list(model.networks))
        with torch.no_grad():
            outputs.append([model.networks[name](x) for name in ("G_A", "G_B")]
                           + [model.networks[name](x) for name in ("D_A", "D_B")])
    for left, right in zip(*outputs):
        assert torch.allclose(left, right, atol=1e-4), (left - right).abs().max()
    # ... and the two steps really moved the generator away from its initial weights (train.py seeds 0)
    torch.manual_seed(0)
    initial = create_model("cycle_gan", opt, torch.device("cpu"))
    with torch.no_grad():
        assert not torch.allclose(initial.networks["G_A"](x), outputs[0][0], atol=1e-3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ranks_started_with_different_options_are_refused(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2)
    port = free_port()
    processes = []
    for rank, lr in ((0, "0.0002"), (1, "0.001")):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port)}
        command = [sys.executable, "train.py", *TINY, "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"),
                   "--name", "mixed", "--lr", lr]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 2, err[-2000:]
        assert "started with different options" in err and "--lr: rank 0 0.0002 vs rank 1 0.001" in err
    assert not (tmp_path / "ckpt" / "mixed" / "latest.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("uait", ["--switch_epoch", "1", "--ngf_attention", "4"]),  # frozen attention networks in stage 2
        ("guidegan", []),  # one map bank for all processes, with the sampler reshuffling the shards
        ("attentiongan_multi", ["--n_critic", "2", "--n_attention", "3"]),  # D-only steps, gradient penalty
    ],
)
def test_torchrun_trains_the_models_with_special_steps(tmp_path, model, extra):
    if model == "attentiongan_multi":
        from data.synthetic import make_synthetic_dataset

        data = make_synthetic_dataset(tmp_path / "data", size=32, n_train=4, n_test=2, domains=3, workers=1, progress=False)
    else:
        data = make_unaligned(tmp_path / "data", n_a=4, n_b=4)
    args = [*TINY, "--model", model, "--dataroot", data, "--checkpoints_dir", tmp_path / "ckpt", "--name", model,
            "--n_epochs", "1", "--n_epochs_decay", "1", *extra]
    result = torchrun(2, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "broadcast_buffers" not in result.stderr  # no deprecation warning from how DDP is built
    checkpoint = load(tmp_path / "ckpt" / model / "latest.pt")
    assert checkpoint["progress"]["epoch"] == 3 and len(checkpoint["ranks"]) == 2
    if model == "guidegan":
        # every process stored every process's maps: rank 0's bank (the one saved) holds all four images
        assert sorted(checkpoint["state"]["extra"]["banks"]["A"]["maps"]) == [0, 1, 2, 3]
