"""Fault injection: NaN training, bad options, a full disk, bad data, torn files and kills.

Each case checks the behaviour docs/robustness.md promises: a message naming the file or
option and what to do, exit status 2 (bad input) or 3 (the run failed), and no good file
replaced by a broken or half-written one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_script
from data import create_dataset
from data.image_folder import list_images, load_mask, mask_from_image
from models import NonFiniteLoss, create_model
from options import parse_test_options, parse_train_options
from tests.conftest import FAST, make_unaligned, run_script, write_image
from util import checkpoint as checkpoint_module
from util.checkpoint import atomic_save, atomic_write_text, save_training_checkpoint
from util.errors import DiskFull, RunFailed, UserError

TRAIN = [*FAST, "--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "1", "--display_freq", "100"]


def tiny_run(tmp_path: Path, name: str = "run", *extra: str) -> list[str]:
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=3)
    return [*TRAIN, "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"), "--name", name, *extra]


def args_for_test_py(tmp_path: Path, name: str = "run") -> list[str]:
    """test.py options for the run :func:`tiny_run` trained (FAST without the training-only ones)."""
    at = FAST.index("--display_id")
    return [*FAST[:at], *FAST[at + 2:], "--dataroot", str(tmp_path / "data"), "--checkpoints_dir", str(tmp_path / "ckpt"),
            "--name", name, "--results_dir", str(tmp_path / "res")]


def finite(path: Path) -> bool:
    state = torch.load(path, weights_only=True)["state"]["networks"]
    return all(bool(torch.isfinite(v).all()) for net in state.values() for v in net.values() if v.is_floating_point())


# ------------------------------------------------------------------ 1. non-finite training
def test_diverging_run_stops_naming_the_loss_step_and_last_good_checkpoint(tmp_path):
    args = tiny_run(tmp_path, "nan", "--lr", "1e20", "--save_latest_freq", "1")
    result = run_script("train.py", *args)
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert "training stopped: non-finite loss" in result.stderr and "at epoch 1, step" in result.stderr
    assert "last good checkpoint:" in result.stderr and "latest.pt" in result.stderr
    for path in (tmp_path / "ckpt" / "nan").glob("*.pt"):
        assert finite(path), path


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    opt = parse_train_options(tiny_run(tmp_path))
    model = create_model("cycle_gan", opt, torch.device("cpu"))
    model.setup()
    target = tmp_path / "latest.pt"
    atomic_save({"good": True}, target)
    with torch.no_grad():
        next(model.networks["G_A"].parameters())[0].fill_(float("nan"))
    with pytest.raises(RunFailed, match="non-finite .*G_A"):
        save_training_checkpoint(target, model, opt, {"epoch": 1, "position": 0, "total_iters": 0})
    assert torch.load(target, weights_only=True) == {"good": True}


def nan_batch() -> dict:
    batch = {side: torch.full((1, 3, 32, 32), float("nan")) for side in "AB"}
    for side in "AB":
        batch[f"{side}_paths"] = [f"{side}.png"]
    return batch


def test_skip_policy_skips_bad_steps_then_stops(tmp_path):
    opt = parse_train_options(tiny_run(tmp_path, "skip", "--nonfinite", "skip", "--max_skipped_steps", "1"))
    model = create_model("cycle_gan", opt, torch.device("cpu"))
    model.setup()
    before = [p.detach().clone() for p in model.networks["G_A"].parameters()]
    model.train_step(nan_batch())  # G and D steps both skipped
    assert model.skipped_steps == 2
    assert all(torch.equal(a, b) for a, b in zip(before, model.networks["G_A"].parameters()))
    with pytest.raises(NonFiniteLoss, match="cycle_A"):
        model.train_step(nan_batch())


def test_test_py_refuses_non_finite_weights_and_evaluate_refuses_flat_outputs(tmp_path):
    args = tiny_run(tmp_path)
    assert run_script("train.py", *args).returncode == 0
    latest = tmp_path / "ckpt" / "run" / "latest.pt"
    good = torch.load(latest, weights_only=True)
    good["state"]["networks"]["G_A"]["encoder.1.weight"].fill_(float("nan"))
    torch.save(good, tmp_path / "ckpt" / "run" / "epoch_9.pt")
    result = run_script("test.py", *args_for_test_py(tmp_path), "--epoch", "9")
    assert result.returncode == 2 and "non-finite weights" in result.stderr and "G_A" in result.stderr
    assert run_script("test.py", *args_for_test_py(tmp_path)).returncode == 0
    out = tmp_path / "res" / "run" / "test_latest"
    manifest = json.loads((out / "results.json").read_text())
    for row in manifest["rows"]:
        for visual in row["visuals"].values():
            if visual["kind"] == "fake":
                Image.new("RGB", (32, 32)).save(out / visual["file"])  # what NaN weights produced before
    result = run_script("scripts/evaluate.py", "--results", str(out), "--no_inception", "--no_progress")
    assert result.returncode == 2 and "one flat colour" in result.stderr


# ------------------------------------------------------------------ 2. option values
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--batch_size", "0"], "--batch_size 0: must be an integer >= 1"),
        (["--crop_size", "300"], "--crop_size 300 is larger than --load_size 286"),
        (["--crop_size", "63"], "--crop_size 63: the resnet_9blocks generator needs image sides that are multiples of 4"),
        (["--lr", "-0.1"], "--lr -0.1: must be > 0"),
        (["--lr", "nan"], "--lr nan: must be a finite number"),
        (["--beta1", "1.5"], "--beta1 1.5: must be in [0, 1)"),
        (["--lambda_A", "-1"], "--lambda_A -1.0: must be >= 0"),
        (["--n_epochs", "0", "--n_epochs_decay", "0"], "train for at least one epoch"),
        (["--crop_size", "16", "--load_size", "16"], "the discriminator needs images of at least 24 px"),
        (["--model", "attentiongan", "--n_attention", "1"], "--n_attention 1: scheme II needs at least 2 masks"),
        (["--model", "attentiongan", "--netG", "unet_128"], "--netG unet_128: this model's generator is ResNet-based"),
        (["--model", "aggan", "--crop_size", "24", "--load_size", "24"], "at least 32 px"),
        (["--model", "pix2pix", "--crop_size", "128", "--load_size", "143"], "unet_256 generator needs image sides "
                                                                             "that are multiples of 256"),
        (["--input_nc", "4"], "--input_nc 4: must be 1 (grayscale) or 3 (RGB)"),
    ],
)
def test_bad_option_values_are_named(argv, expected):
    with pytest.raises(UserError) as err:
        parse_train_options(argv)
    assert expected in str(err.value)


def test_several_bad_values_are_listed_together_and_exit_2():
    result = run_script("train.py", "--batch_size", "0", "--lr", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--batch_size 0" in result.stderr and "--lr -1.0" in result.stderr


def test_test_options_are_checked_after_testing_adjustments():
    assert parse_test_options(["--crop_size", "300"]).load_size == 300  # test resizes to the crop size
    with pytest.raises(UserError, match="--epoch x"):
        parse_test_options(["--epoch", "x"])


# ------------------------------------------------------------------ 3. a full disk
def test_full_disk_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "latest.pt"
    atomic_save({"version": 1}, target)

    def full_disk(obj, handle):
        handle.write(b"partial")
        raise RuntimeError("enforce fail at inline_container.cc: unexpected pos") from OSError(
            errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(DiskFull) as err:
        atomic_save({"version": 2}, target)
    message = str(err.value)
    assert message.startswith("no space left on ") and str(target) in message and "is intact" in message
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"version": 1}
    assert not list(tmp_path.glob(".*.tmp"))


def mount_tmpfs(mount: Path, size_bytes: int) -> bool:
    mount.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount)],
                          capture_output=True).returncode == 0


def test_full_tmpfs_stops_training_cleanly_and_resume_says_so(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=6, n_b=3)
    args = [*TRAIN, "--dataroot", str(data), "--name", "full", "--save_latest_freq", "1", "--n_epochs", "3", "--no_html"]
    measure = run_script("train.py", *args, "--checkpoints_dir", str(tmp_path / "measure"), "--max_iters", "1")
    assert measure.returncode == 0, measure.stderr[-2000:]
    size = (tmp_path / "measure" / "full" / "latest.pt").stat().st_size
    small_disk = tmp_path / "small"
    # room for one checkpoint and the logs, not for the temp file of the next one
    if not mount_tmpfs(small_disk, int(size * 1.5) // 4096 * 4096):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        check_full_disk(args, small_disk)
    finally:
        subprocess.run(["umount", str(small_disk)], check=False)


def check_full_disk(args: list[str], small_disk: Path) -> None:
    args = [*args, "--checkpoints_dir", str(small_disk)]
    result = run_script("train.py", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: no space left on tmpfs" in result.stderr and "Traceback" not in result.stderr
    assert "resume with --continue_train" in result.stderr
    run_dir = small_disk / "full"
    assert not list(run_dir.glob(".*.tmp"))
    latest = torch.load(run_dir / "latest.pt", weights_only=True)  # the previous one, intact
    assert latest["progress"]["total_iters"] >= 1
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    again = run_script("train.py", *args, "--continue_train")
    assert again.returncode == 2 and "error: no space left on tmpfs" in again.stderr and "Traceback" not in again.stderr


# ------------------------------------------------------------------ 4. bad data
def test_symlink_loops_are_followed_once(tmp_path):
    folder = tmp_path / "trainA"
    for i in range(3):
        write_image(folder / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    (folder / "loop").symlink_to(folder)
    (folder / "again.png").symlink_to(folder / "0.png")
    assert [p.name for p in list_images(folder)] == ["0.png", "1.png", "2.png"]


def test_every_pillow_format_is_read_and_other_files_are_noted(tmp_path, capsys):
    folder = tmp_path / "trainA"
    folder.mkdir()
    frames = [Image.new("P", (16, 16), color) for color in (1, 2)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (16, 16)).save(folder / "photo.tga")
    (folder / "notes.txt").write_text("hello")
    assert [p.name for p in list_images(folder)] == ["anim.gif", "photo.tga"]
    assert "skipped 1 file(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("array", "mode", "expected"),
    [
        (np.array([[[255, 0, 0], [0, 0, 0]]], np.uint8), "RGB", [[True, False]]),
        (np.array([[1, 0]], np.uint8), "L", [[True, False]]),
        (np.array([[250, 3, 128, 1]], np.uint8), "L", [[True, False, True, False]]),
    ],
)
def test_masks_are_non_zero_is_object_in_any_mode(tmp_path, array, mode, expected):
    path = write_image(tmp_path / "m.png", array, mode)
    with Image.open(path) as image:
        assert mask_from_image(image, path).tolist() == expected


def test_a_label_map_mask_is_refused_by_name(tmp_path):
    path = write_image(tmp_path / "labels.png", np.array([[0, 1, 2, 7]], np.uint8))
    with Image.open(path) as image, pytest.raises(UserError, match="labels.png is ambiguous"):
        mask_from_image(image, path)


def test_a_mask_of_another_size_names_both_files(tmp_path):
    root = make_unaligned(tmp_path / "d")
    write_image(root / "trainA_mask" / "im 0.png", np.zeros((30, 50), np.uint8))
    with pytest.raises(UserError) as err:
        create_dataset(parse_train_options(["--dataroot", str(root), *FAST]))
    assert "trainA_mask/im 0.png is 50x30 but its image" in str(err.value) and "trainA/im 0.png is 40x36" in str(err.value)
    with pytest.raises(UserError, match="expected 40x36"):
        load_mask(root / "trainA_mask" / "im 0.png", (40, 36))


def test_broken_files_fail_when_the_dataset_is_built(tmp_path):
    root = make_unaligned(tmp_path / "d")
    (root / "trainB" / "im 2.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="cannot read image .*trainB/im 2.png"):
        create_dataset(parse_train_options(["--dataroot", str(root), *FAST]))


def test_tiny_images_are_accepted_with_one_warning(tmp_path):
    root = make_unaligned(tmp_path / "d", masks=False)
    write_image(root / "trainA" / "tiny.png", np.zeros((1, 1, 3), np.uint8))
    write_image(root / "trainA" / "small.png", np.zeros((5, 5, 3), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = create_dataset(parse_train_options(["--dataroot", str(root), *FAST]))
    messages = [str(w.message) for w in caught if "upscaled" in str(w.message)]
    assert len(messages) == 1 and "2 image(s)" in messages[0] and "tiny.png, 1x1" in messages[0]
    assert dataset[0]["A"].shape == (3, 32, 32)


def test_evaluation_counts_images_without_a_mask(tmp_path):
    args = tiny_run(tmp_path)
    assert run_script("train.py", *args).returncode == 0
    (tmp_path / "data" / "testA_mask" / "im 1.png").unlink()
    assert run_script("test.py", *args_for_test_py(tmp_path)).returncode == 0
    out = tmp_path / "res" / "run" / "test_latest"
    result = run_script("scripts/evaluate.py", "--results", str(out), "--no_inception", "--no_progress")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())["directions"]["AtoB"]
    assert metrics["n_without_mask"] == 1 and metrics["background"]["n"] == 3
    assert any("1 of 4 input(s) have no ground-truth mask" in note for note in metrics["notes"])
    # evaluating again without any masks keeps the earlier measures and says so
    shutil.rmtree(tmp_path / "data" / "testA_mask")
    shutil.rmtree(tmp_path / "data" / "testB_mask")
    again = run_script("scripts/evaluate.py", "--results", str(out), "--no_inception", "--no_progress")
    assert again.returncode == 0 and "kept as" in again.stderr and "AtoB: background" in again.stderr
    assert json.loads((out / "metrics.previous.json").read_text())["directions"]["AtoB"]["background"]


# ------------------------------------------------------------------ 5. resume edge cases
def test_torn_last_log_line_and_stale_temp_files_do_not_block_resume(tmp_path):
    args = tiny_run(tmp_path, "torn", "--max_iters", "2")
    assert run_script("train.py", *args).returncode == 0
    run_dir = tmp_path / "ckpt" / "torn"
    with (run_dir / "loss_log.jsonl").open("a") as handle:
        handle.write('{"epoch": 1, "progress": 0.7, "total_it')
    (run_dir / ".latest.pt.abc123.tmp").write_bytes(b"x" * 1000)
    resumed = run_script("train.py", *args[:-2], "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "dropped the torn last line" in resumed.stdout and "removed 1 temp file(s)" in resumed.stdout
    assert not list(run_dir.glob(".*.tmp"))
    records = [json.loads(line) for line in (run_dir / "loss_log.jsonl").read_text().splitlines()]
    assert records[-1]["total_iters"] == 8


def test_the_epoch_snapshot_is_written_before_latest(tmp_path, monkeypatch):
    written = []
    real_save = train_script.save_training_checkpoint

    def save_then_die(path, *rest):
        real_save(path, *rest)
        written.append(Path(path).name)
        if Path(path).name.startswith("epoch_"):
            raise KeyboardInterrupt  # killed between the two writes

    monkeypatch.setattr(train_script, "save_training_checkpoint", save_then_die)
    opt = parse_train_options(tiny_run(tmp_path, "kill", "--save_latest_freq", "0", "--save_epoch_freq", "1"))
    with pytest.raises(KeyboardInterrupt):
        train_script.train(opt)
    assert written == ["epoch_1.pt"]
    monkeypatch.undo()
    resumed = run_script("train.py", *tiny_run(tmp_path, "kill"), "--continue_train", "--epoch", "1")
    assert resumed.returncode == 0 and "resuming kill at epoch 2" in resumed.stdout


def test_corrupt_latest_lists_the_epoch_snapshots(tmp_path):
    args = tiny_run(tmp_path, "corrupt", "--save_epoch_freq", "1")
    assert run_script("train.py", *args).returncode == 0
    (tmp_path / "ckpt" / "corrupt" / "latest.pt").write_bytes(b"garbage")
    result = run_script("train.py", *args, "--continue_train")
    assert result.returncode == 2 and "may be corrupt" in result.stderr
    assert "--epoch 1, --epoch 2" in result.stderr


# ------------------------------------------------------------------ 6. another model's checkpoint
def test_test_py_names_the_model_a_checkpoint_was_trained_with(tmp_path):
    args = tiny_run(tmp_path)
    assert run_script("train.py", *args).returncode == 0
    for model in ("attentiongan", "aggan"):
        result = run_script("test.py", *args_for_test_py(tmp_path), "--model", model)
        assert result.returncode == 2 and "was trained with --model cycle_gan" in result.stderr, result.stderr


# ------------------------------------------------------------------ 7. file modes
def test_written_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "file.txt"
        atomic_write_text(path, "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~checkpoint_module._current_umask()
    assert path.stat().st_mode & 0o044  # readable by others under the usual umask


# ------------------------------------------------------------------ 8. evaluation without Inception weights
def test_evaluation_without_inception_weights_computes_the_rest(tmp_path, monkeypatch):
    args = tiny_run(tmp_path)
    assert run_script("train.py", *args).returncode == 0
    assert run_script("test.py", *args_for_test_py(tmp_path)).returncode == 0
    out = tmp_path / "res" / "run" / "test_latest"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights_here"))
    result = run_script("scripts/evaluate.py", "--results", str(out), "--no_progress")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "weights-inception-2015-12-05-6726825d.pth" in metrics["meta"]["fid_kid_not_computed"]
    assert metrics["directions"]["AtoB"]["fid"] is None and metrics["directions"]["AtoB"]["background"]
    assert "FID/KID: not computed" in (out / "metrics.md").read_text()
    explicit = run_script("scripts/evaluate.py", "--results", str(out), "--inception_weights", str(tmp_path / "missing.pth"))
    assert explicit.returncode == 2 and "missing.pth" in explicit.stderr
