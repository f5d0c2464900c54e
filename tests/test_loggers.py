"""TensorBoard and Weights & Biases: what train.py sends them, read back from their files."""

from __future__ import annotations

import builtins

import pytest

import train as train_script
from tests.conftest import FAST, make_unaligned
from util.errors import UserError


def train_args(tmp_path, *extra: str) -> list[str]:
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4)
    return [*FAST, "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"), "--name", "run", "--model",
            "attentiongan", "--n_attention", "3", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "2",
            "--display_freq", "2", *extra]


def test_tensorboard_gets_losses_lr_and_the_pictures(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert train_script.main(train_args(tmp_path, "--tensorboard")) == 0
    events = EventAccumulator(str(tmp_path / "ckpt" / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    assert {"loss/cycle_A", "loss/G_A", "loss/D_A", "loss/mean_att_A", "lr"} <= scalars
    assert [e.step for e in events.Scalars("loss/cycle_A")] == [2, 4]
    assert {"visuals/real_A", "visuals/fake_B", "visuals/attention_A"} <= images
    assert events.Images("visuals/attention_A")[-1].step == 4


def test_wandb_offline_run_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed here")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert train_script.main(train_args(tmp_path, "--use_wandb", "--wandb_mode", "offline")) == 0
    run_dir = tmp_path / "ckpt" / "run"
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    files = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert files and files[0].stat().st_size > 0


def test_a_missing_logger_package_is_named_before_training(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert train_script.main(train_args(tmp_path, "--tensorboard")) == 2
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (tmp_path / "ckpt" / "run" / "latest.pt").exists()
    with pytest.raises(UserError):
        from util.loggers import TensorBoardLogger

        TensorBoardLogger(tmp_path)
