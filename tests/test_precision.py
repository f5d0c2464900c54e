"""--precision, --channels_last and --compile: the mechanism in the base model and its runner."""

from __future__ import annotations

import argparse
import math
from typing import Any

import pytest
import torch
from torch import nn

from models import BaseModel, available_models, create_model
from models.runtime import NetworkRunner, check_compile_supported
from options import parse_train_options
from tests.conftest import make_unaligned, resume_point, run_script
from util.errors import UserError
from util.precision import Precision, to_fp32

TINY = ["--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
        "--display_id", "0", "--num_threads", "0"]


def unpaired_batch(size: int = 32, batch_size: int = 1) -> dict[str, Any]:
    torch.manual_seed(1)
    batch: dict[str, Any] = {}
    for side in "AB":
        batch[side] = torch.rand(batch_size, 3, size, size) * 2 - 1
        batch[f"{side}_mask"] = (torch.rand(batch_size, 1, size, size) > 0.5).float()
        batch[f"{side}_has_mask"] = torch.ones(batch_size, dtype=torch.bool)
        batch[f"{side}_paths"] = [f"{side}{i}.png" for i in range(batch_size)]
    batch["index"] = torch.arange(batch_size)
    return batch


def trainable_models() -> list[str]:
    """The two-domain models (attentiongan_multi takes labelled batches: tests/test_multidomain.py covers it)."""
    return [name for name in available_models() if name not in ("test", "attentiongan_multi")]


def conv_input_dtypes(model: BaseModel) -> set[torch.dtype]:
    """Record the dtype every convolution of the model receives (to see autocast at work)."""
    seen: set[torch.dtype] = set()
    for runner in model.networks.values():
        for module in runner.network.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.register_forward_hook(lambda _m, inputs, _o: seen.add(inputs[0].dtype))
    return seen


def tiny_cam_classifier(folder) -> str:
    """A small untrained CAM classifier file, for SAAGAN in tests (it needs one to start)."""
    from models.classifier import DomainClassifier, classifier_checkpoint
    from util.checkpoint import atomic_save

    path = folder / "cam" / "classifier.pt"
    torch.manual_seed(1)
    model = DomainClassifier(input_size=32, width=4, n_layers=3, n_classes=2)
    atomic_save(classifier_checkpoint(model, {}, {"accuracy": 0.5}, {"A": "a", "B": "b"}), path)
    return str(path)


def model_options(model_name: str, folder) -> list[str]:
    """What each model needs beyond TINY: a U-Net for the paired ones, a classifier for SAAGAN."""
    if model_name.endswith("paired") or model_name == "pix2pix":
        return ["--netG", "unet_32", "--norm", "batch"]
    if model_name == "saagan":
        return ["--cam_classifier", tiny_cam_classifier(folder)]
    return []


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("model_name", trainable_models())
def test_low_precision_steps_run_for_every_model_with_finite_fp32_losses(model_name, precision, tmp_path):
    extra = model_options(model_name, tmp_path)
    opt = parse_train_options(["--model", model_name, *TINY, *extra, "--precision", precision,
                               "--checkpoints_dir", str(tmp_path)])
    torch.manual_seed(0)
    model = create_model(model_name, opt, torch.device("cpu"))
    model.setup()
    model.set_mode(True)
    seen = conv_input_dtypes(model)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks.items()}
    # fp16: the gradient scaler skips steps whose gradients overflow until its scale fits.
    for _ in range(1 if precision == "bf16" else 20):
        losses = model.train_step(unpaired_batch())
        assert losses and all(math.isfinite(v) for v in losses.values()), losses
        changed = [name for name, net in model.networks.items()
                   if any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))]
        if changed:
            break
    assert {torch.bfloat16 if precision == "bf16" else torch.float16} <= seen
    assert changed, "no network was updated"
    for net in model.networks.values():
        assert all(p.dtype == torch.float32 for p in net.parameters())  # master weights stay fp32


def test_runner_hands_back_fp32_under_autocast():
    runner = NetworkRunner(nn.Conv2d(3, 4, 3))
    with Precision("bf16", torch.device("cpu")).autocast():
        out = runner(torch.rand(1, 3, 8, 8))
        assert nn.Conv2d(3, 4, 3)(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16  # autocast is on
    assert out.dtype == torch.float32


def test_to_fp32_reaches_into_dataclasses_tuples_and_dicts():
    from models.attention import AttentionOutput

    half = torch.ones(1, dtype=torch.bfloat16)
    value = (AttentionOutput(half, half, half, half), {"m": [half]}, torch.ones(1, dtype=torch.long))
    out = to_fp32(value)
    assert out[0].image.dtype == torch.float32 and out[1]["m"][0].dtype == torch.float32
    assert out[2].dtype == torch.long


class _TwiceModel(BaseModel):
    """Uses its network again after stepping it, inside one autocast region."""

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt, torch.device("cpu"))
        self.add_network("net", nn.Linear(4, 4), init=False)
        self.add_optimizer("net", self.networks["net"].parameters(), lr=0.5, betas=(0.5, 0.999))
        self.x = torch.ones(2, 4)

    def set_input(self, batch: dict[str, Any]) -> None:
        pass

    def optimize_parameters(self) -> dict[str, float]:
        self.first = self.networks["net"](self.x)
        self.minimize("net", self.first.square().mean())
        self.second = self.networks["net"](self.x)
        return {}


def test_weights_changed_by_a_step_are_seen_by_the_next_call_in_the_same_step():
    # Autocast caches low-precision copies of weights; minimize() must drop them after the step.
    opt = argparse.Namespace(isTrain=True, epoch_count=1, precision="bf16", lr=0.1, beta1=0.5, pool_size=0, seed=0,
                             init_type="normal", init_gain=0.02)
    model = _TwiceModel(opt)
    model.train_step({})
    with torch.no_grad():
        expected = model.networks["net"].network(model.x.bfloat16().float())
    assert not torch.allclose(model.first, model.second)
    assert torch.allclose(model.second, expected, atol=0.05)


def test_fp16_scalers_are_per_optimiser_and_checkpointed(tmp_path):
    opt = parse_train_options(["--model", "cycle_gan", *TINY, "--precision", "fp16"])
    model = create_model("cycle_gan", opt, torch.device("cpu"))
    model.setup()
    model.train_step(unpaired_batch())
    state = model.training_state()
    assert set(state["scalers"]) == {"G", "D"} and all(s["scale"] > 0 for s in state["scalers"].values())
    other = create_model("cycle_gan", opt, torch.device("cpu"))
    other.setup()
    other.load_training_state(state)
    assert other.scalers["G"].get_scale() == model.scalers["G"].get_scale()


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    x = torch.rand(2, 3, 16, 16)
    expected = net(x)
    runner = NetworkRunner(net, use_channels_last=True)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(runner(x), expected, atol=1e-5)
    assert list(runner.state_dict()) == list(net.state_dict())  # checkpoints keep the plain keys


def test_compile_needs_a_compiler_on_the_cpu(monkeypatch):
    monkeypatch.setattr("models.runtime.shutil.which", lambda name: None)
    with pytest.raises(UserError, match="--compile on the CPU needs a C\\+\\+ compiler"):
        check_compile_supported(torch.device("cpu"))


def test_compiled_runner_matches_eager():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh())
    x = torch.rand(1, 3, 8, 8)
    compiled = NetworkRunner(net, compile_network=True)
    assert torch.allclose(compiled(x), net(x), atol=1e-5)
    assert list(compiled.state_dict()) == list(net.state_dict())


def test_bf16_run_resumes_exactly(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=5, n_b=4)
    common = [*TINY, "--model", "attentiongan", "--n_attention", "3", "--dataroot", str(data), "--checkpoints_dir",
              str(tmp_path / "ckpt"), "--precision", "bf16", "--n_epochs", "1", "--n_epochs_decay", "1", "--no_progress",
              "--pool_size", "2", "--print_freq", "1"]
    whole = run_script("train.py", *common, "--name", "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    first = run_script("train.py", *common, "--name", "cut", "--max_iters", "3")
    assert first.returncode == 0 and "stopping at --max_iters 3" in first.stdout
    second = run_script("train.py", *common, "--name", "cut", "--continue_train")
    assert second.returncode == 0, second.stderr[-2000:]
    a = torch.load(tmp_path / "ckpt" / "whole" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "ckpt" / "cut" / "latest.pt", weights_only=True)
    assert a["options"]["precision"] == "bf16" and resume_point(a["progress"]) == resume_point(b["progress"])
    for net, weights in a["state"]["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, b["state"]["networks"][net][key]), (net, key)


@pytest.mark.slow
def test_speed_benchmark_runs_on_tiny_settings(tmp_path):
    from tests.conftest import make_unaligned

    data = make_unaligned(tmp_path / "data", n_a=3, n_b=3)
    out = tmp_path / "speed.md"
    result = run_script("scripts/benchmark_speed.py", "--model", "cycle_gan", "--size", "32", "--precision", "fp32", "bf16",
                        "--steps", "1", "--warmup", "1", "--gpu_ids", "-1", "--dataroot", data, "--num_threads", "0",
                        "--network", "--ngf 4 --ndf 4 --netG resnet_6blocks", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| cycle_gan |")]
    assert len(rows) == 2 and rows[0].endswith("| 1.00x | 1.00x |")
    cells = [cell.strip() for cell in rows[1].split("|")]
    assert float(cells[5]) > 0 and float(cells[7]) > 0 and cells[9].endswith("x")  # s/step, loader s/step, speedup
    loader = run_script("scripts/benchmark_speed.py", "--loader_only", "--dataroot", data, "--size", "32", "--steps", "3",
                        "--warmup", "1", "--num_threads", "0", "--gpu_ids", "-1")
    assert loader.returncode == 0 and "loader samples/s" in loader.stdout, loader.stderr[-2000:]


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch, capsys):
    from util import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    fast = precision.Precision("auto", torch.device("cpu"))
    assert (fast.asked, fast.name, fast.dtype) == ("auto", "bf16", torch.bfloat16) and "avx512_bf16" in fast.why
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert precision.Precision("auto", torch.device("cpu")).name == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    slow = precision.Precision("auto", torch.device("cpu"))
    assert slow.name == "fp32" and not slow.enabled and "without AVX512-BF16" in slow.why
    model = create_model("cycle_gan", parse_train_options(["--model", "cycle_gan", "--gpu_ids", "-1", "--precision", "auto",
                                                           "--ngf", "4", "--ndf", "4"]), torch.device("cpu"))
    assert model.precision.name == "fp32" and "--precision auto: fp32 (CPU without" in capsys.readouterr().out
    assert precision.Precision("bf16", torch.device("cpu")).name == "bf16"  # asked for: kept


def test_compile_keeps_inductors_cache_and_says_when_it_compiles(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr("models.runtime.COMPILE_CACHE", tmp_path / "inductor")
    create_model("cycle_gan", parse_train_options(["--model", "cycle_gan", "--gpu_ids", "-1", "--compile", "--ngf", "4",
                                                   "--ndf", "4"]), torch.device("cpu"))
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor") and (tmp_path / "inductor").is_dir()
    out = capsys.readouterr().out
    assert "compiled on its first training steps" in out and str(tmp_path / "inductor") in out
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's choice wins
    create_model("cycle_gan", parse_train_options(["--model", "cycle_gan", "--gpu_ids", "-1", "--compile", "--ngf", "4",
                                                   "--ndf", "4"]), torch.device("cpu"))
    assert str(tmp_path / "mine") in capsys.readouterr().out
