"""Train, kill, resume, test: the whole life of a run on a tiny dataset (64 px, CPU).

The resumed run must end bit-for-bit where an uninterrupted run with the same seed
ends: same weights, same learning rate, same loss records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, make_unaligned, resume_point, run_ok, run_script

TRAIN = [
    "--gpu_ids",
    "-1",
    "--ngf",
    "4",
    "--ndf",
    "4",
    "--netG",
    "resnet_6blocks",
    "--load_size",
    "72",
    "--crop_size",
    "64",
    "--num_threads",
    "0",
    "--display_id",
    "0",
    "--no_progress",
    "--batch_size",
    "2",
    "--n_epochs",
    "2",
    "--n_epochs_decay",
    "2",
    "--print_freq",
    "2",
    "--display_freq",
    "4",
    "--save_latest_freq",
    "2",
    "--save_epoch_freq",
    "2",
    "--pool_size",
    "3",
]


def progress_of(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["progress"]


def start_and_kill(args: list[str], checkpoint: Path, min_images: int) -> int:
    """Start train.py and SIGKILL it once its latest checkpoint has seen ``min_images``."""
    process = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if checkpoint.exists():
                try:
                    if progress_of(checkpoint)["total_iters"] >= min_images:
                        break
                except Exception:  # noqa: BLE001 - a file being renamed into place mid-read; look again
                    pass
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    return process.returncode


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A reference run of 4 epochs (trained in this process)."""
    tmp = tmp_path_factory.mktemp("e2e")
    data = make_unaligned(tmp / "data", n_a=6, n_b=5, size=(80, 72))
    common = ["--dataroot", str(data), "--checkpoints_dir", str(tmp / "ckpt"), *TRAIN]
    run_ok("train.py", "--name", "reference", *common)
    return {"tmp": tmp, "data": data, "common": common}


@pytest.fixture(scope="module")
def killed(runs) -> dict:
    """The same run as ``runs``' reference, SIGKILLed part-way in its own process and resumed."""
    tmp, common = runs["tmp"], runs["common"]
    killed_code = start_and_kill(["--name", "resumed", *common], tmp / "ckpt" / "resumed" / "latest.pt", min_images=8)
    at_kill = progress_of(tmp / "ckpt" / "resumed" / "latest.pt")
    resumed = run_ok("train.py", "--name", "resumed", "--continue_train", *common)
    return {**runs, "killed_code": killed_code, "at_kill": at_kill, "resume_stdout": resumed.stdout}


@pytest.mark.slow
def test_the_interrupted_run_was_really_killed_part_way(killed):
    assert killed["killed_code"] == -signal.SIGKILL
    assert 8 <= killed["at_kill"]["total_iters"] < 24  # 4 epochs x 6 images: it was cut short


@pytest.mark.slow
def test_resume_starts_at_the_checkpointed_epoch_and_lr(killed):
    at = killed["at_kill"]
    line = next(line for line in killed["resume_stdout"].splitlines() if line.startswith("resuming"))
    assert f"at epoch {at['epoch']}, position {at['position']}" in line
    reference = [json.loads(l) for l in (killed["tmp"] / "ckpt" / "reference" / "loss_log.jsonl").read_text().splitlines()]
    # Epoch e trains at 2e-4 * (1 - max(0, e - 2) / 3): constant for 2 epochs, then linear decay over 2 (+1).
    expected_lr = 0.0002 * (1 - max(0, at["epoch"] - 2) / 3)
    assert f"lr {expected_lr:.7f}" in line
    assert any(abs(r["lr"] - expected_lr) < 1e-12 for r in reference if r["epoch"] == at["epoch"])


@pytest.mark.slow
def test_resumed_run_ends_exactly_where_the_uninterrupted_one_does(killed):
    ckpt = killed["tmp"] / "ckpt"
    reference = torch.load(ckpt / "reference" / "latest.pt", map_location="cpu", weights_only=True)
    resumed = torch.load(ckpt / "resumed" / "latest.pt", map_location="cpu", weights_only=True)
    expected = {"epoch": 5, "position": 0, "total_iters": 24}
    assert resume_point(reference["progress"]) == resume_point(resumed["progress"]) == expected
    for net, weights in reference["state"]["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, resumed["state"]["networks"][net][key]), (net, key)
    for name in reference["state"]["optimizers"]:
        assert (
            reference["state"]["optimizers"][name]["param_groups"][0]["lr"]
            == resumed["state"]["optimizers"][name]["param_groups"][0]["lr"]
        )


@pytest.mark.slow
def test_loss_curve_continues_without_duplicates(killed):
    ckpt = killed["tmp"] / "ckpt"
    records = {
        name: [json.loads(l) for l in (ckpt / name / "loss_log.jsonl").read_text().splitlines()]
        for name in ("reference", "resumed")
    }
    assert [r["total_iters"] for r in records["resumed"]] == [r["total_iters"] for r in records["reference"]]
    for ref, res in zip(records["reference"], records["resumed"]):
        assert ref["losses"] == pytest.approx(res["losses"], rel=1e-6, abs=1e-7)
    assert (ckpt / "resumed" / "loss_curve.png").stat().st_size > 1000
    assert "resumed at" in (ckpt / "resumed" / "loss_log.txt").read_text()


def test_checkpoints_per_epoch_and_options_file(runs):
    run_dir = runs["tmp"] / "ckpt" / "reference"
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["epoch_2.pt", "epoch_4.pt", "latest.pt"]
    assert "--model" in (run_dir / "train_opt.txt").read_text() or "model" in (run_dir / "train_opt.txt").read_text()
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temp files behind


def test_training_page_lists_images_that_exist(runs):
    page = runs["tmp"] / "ckpt" / "reference" / "web" / "index.html"
    html = page.read_text()
    assert "epoch [4]" in html and "loss_curve.png" in html
    for name in ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"):
        assert (page.parent / "images" / f"epoch004_{name}.png").exists()


def test_test_script_writes_the_result_page(runs):
    tmp = runs["tmp"]
    result = run_ok(
        "test.py",
        "--dataroot",
        str(runs["data"]),
        "--name",
        "reference",
        "--checkpoints_dir",
        str(tmp / "ckpt"),
        "--results_dir",
        str(tmp / "results"),
        "--gpu_ids",
        "-1",
        "--ngf",
        "4",
        "--netG",
        "resnet_6blocks",
        "--crop_size",
        "64",
        "--batch_size",
        "2",
        "--num_test",
        "0",
        "--no_progress",
    )
    page = tmp / "results" / "reference" / "test_latest" / "index.html"
    assert str(page) in result.stdout
    manifest = json.loads((page.parent / "results.json").read_text())
    assert len(manifest["rows"]) == 6  # max(|testA|, |testB|)
    for row in manifest["rows"]:
        assert list(row["visuals"]) == ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
        assert row["visuals"]["fake_B"] == {"file": f"images/{row['id']}_fake_B.png", "source": "A", "kind": "fake"}
        for visual in row["visuals"].values():
            assert (page.parent / visual["file"]).stat().st_size > 0
    html = page.read_text()
    assert html.count("<img") == 6 * (6 + 2)  # every visual, and the data's own mask of each side
    assert html.count("_true_mask_A.png") == 2 * 6  # link and image


def test_pages_load_every_image_in_chromium(runs):
    from tests.browser import chromium_missing_reason, image_load_report

    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    tmp = runs["tmp"]
    page = tmp / "results" / "reference" / "test_latest" / "index.html"
    if not page.exists():
        test_test_script_writes_the_result_page(runs)
    for html in (page, tmp / "ckpt" / "reference" / "web" / "index.html"):
        report = image_load_report(html)
        assert report, html
        broken = [item["src"] for item in report if item["naturalWidth"] <= 0]
        assert not broken, broken


def test_architecture_mismatch_names_the_option(runs):
    tmp = runs["tmp"]
    result = run_script("test.py",
            "--dataroot",
            str(runs["data"]),
            "--name",
            "reference",
            "--checkpoints_dir",
            str(tmp / "ckpt"),
            "--results_dir",
            str(tmp / "r2"),
            "--gpu_ids",
            "-1",
            "--ngf",
            "8",
            "--netG",
            "resnet_6blocks",
            "--crop_size",
            "64")
    assert result.returncode == 2
    assert "--ngf 4" in result.stderr and "Traceback" not in result.stderr


def test_epoch_number_and_single_folder_translation(runs):
    tmp = runs["tmp"]
    run_ok(
        "test.py",
        "--model",
        "test",
        "--dataroot",
        str(runs["data"] / "testA"),
        "--name",
        "reference",
        "--epoch",
        "2",
        "--checkpoints_dir",
        str(tmp / "ckpt"),
        "--results_dir",
        str(tmp / "single"),
        "--gpu_ids",
        "-1",
        "--ngf",
        "4",
        "--netG",
        "resnet_6blocks",
        "--crop_size",
        "64",
        "--no_progress",
    )
    manifest = json.loads((tmp / "single" / "reference" / "test_2" / "results.json").read_text())
    assert len(manifest["rows"]) == 6 and list(manifest["rows"][0]["visuals"]) == ["real", "fake"]


def test_a_new_run_refuses_to_overwrite_an_existing_one(runs):
    result = run_script("train.py", "--name", "reference", *runs["common"])
    assert result.returncode == 2 and "--continue_train" in result.stderr


@pytest.mark.slow
def test_without_dataroot_the_built_in_dataset_is_generated_and_used(tmp_path):
    from tests.conftest import FAST

    common = [*FAST, "--name", "builtin", "--max_dataset_size", "4"]
    train = run_script(str(ROOT / "train.py"), *common, "--n_epochs", "1", "--n_epochs_decay", "0", cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    root = tmp_path / "datasets" / "synthetic"
    assert "built-in synthetic dataset" in train.stdout
    assert (root / "synthetic.json").exists() and len(list((root / "trainA_mask").glob("*.png"))) == 1000
    at = common.index("--display_id")
    test_options = common[:at] + common[at + 2:]  # a training-only option
    test = run_script(str(ROOT / "test.py"), *test_options, "--num_test", "3", cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    manifest = json.loads((tmp_path / "results" / "builtin" / "test_latest" / "results.json").read_text())
    assert len(manifest["rows"]) == 3 and Path(manifest["rows"][0]["paths"]["A"]).parent == (root / "testA").resolve()


def test_max_iters_stops_resumably_mid_epoch(tmp_path):
    from tests.conftest import FAST

    data = make_unaligned(tmp_path / "data", n_a=5, n_b=5)
    common = [*FAST, "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"), "--name", "budget",
              "--n_epochs", "1", "--n_epochs_decay", "1", "--serial_batches", "--print_freq", "2"]
    first = run_ok("train.py", *common, "--max_iters", "3")
    assert "stopping at --max_iters 3" in first.stdout
    cut = progress_of(tmp_path / "ckpt" / "budget" / "latest.pt")
    assert resume_point(cut) == {"epoch": 1, "position": 3, "total_iters": 3}
    second = run_ok("train.py", *common, "--continue_train")
    assert "at epoch 1, position 3" in second.stdout
    done = progress_of(tmp_path / "ckpt" / "budget" / "latest.pt")
    assert resume_point(done) == {"epoch": 3, "position": 0, "total_iters": 10}
    assert 0 < cut["train_seconds"] < done["train_seconds"]  # the training time adds up over the calls
    records = [json.loads(line) for line in (tmp_path / "ckpt" / "budget" / "loss_log.jsonl").read_text().splitlines()]
    assert records and all(record["seconds_per_image"] > 0 for record in records)


def test_benchmark_summary_table_reads_metrics_json():
    import argparse

    from scripts.attention_benchmark import summarise

    rows = [{"benchmark": {"model": "aggan", "command": "train.py --model aggan"},
             "directions": {"AtoB": {"attention": {"iou_mean": 0.5, "mae_mean": 0.25},
                                     "background": {"psnr_mean": 30.0, "l1_mean": 0.01, "foreground_l1_mean": 0.2}}}},
            {"benchmark": {"model": "cycle_gan", "command": "train.py --model cycle_gan"},
             "directions": {"BtoA": {"attention": None, "background": {"psnr_mean": 15.0, "l1_mean": 0.1,
                                                                        "foreground_l1_mean": 0.3}}}}]
    args = argparse.Namespace(dataroot="d", size=64, max_iters=10, full_network=False)
    table = summarise(rows, args, [])
    assert "| aggan | AtoB | 0.500 | 0.250 | 30.000 | 0.010 | 0.200 |" in table
    assert "| cycle_gan | BtoA | - | - | 15.000 | 0.100 | 0.300 |" in table
    assert "    python train.py --model aggan" in table
