"""Run records: a benchmark run's measures, times, key images and masks over training, kept in a
committed folder so that a comparison whose runs are made in different sessions (on machines that
keep neither checkpoints/ nor results/) is rebuilt from them (evaluation/run_records.py)."""

from __future__ import annotations

import json
import os
import subprocess

from PIL import Image

from evaluation.run_records import compact, group_by_settings, load_records, make_record, measure_value
from scripts.attention_benchmark import summary_of_records
from tests.conftest import ROOT, make_unaligned, run_script

ENTRY = {"attention": {"iou_mean": 0.5, "mae_mean": 0.25, "iou": [0.4, 0.6]},
         "background": {"psnr_mean": 30.0, "l1_mean": 0.01, "foreground_l1_mean": 0.2, "psnr": [29.0, 31.0]},
         "classifier": {"target_fraction": 0.75, "feature_kid_x100": {"mean": 1.5, "std": 0.1}, "per_image": [1, 0]},
         "fid": {"value": 80.0}}
SETTINGS = {"dataroot": "d", "size": 128, "max_iters": 0, "epoch_size": 1334, "n_epochs": 5, "n_epochs_decay": 5,
            "full_network": False, "d_field": "proportional", "precision": "auto", "prefix": "h128", "extra": []}


def row(model: str, seed: int = 0, entry: dict | None = None, accuracy: float = 0.86, precision: str = "bf16") -> dict:
    return {"benchmark": {"model": model, "seed": seed, "command": f"train.py --model {model}", "train_seconds": 100.0,
                          "images": 400, "hardware": "some CPU", "precision": precision},
            "meta": {"classifier": {"path": "c.pt", "architecture": "small", "accuracy": {"accuracy": accuracy}}},
            "directions": {"AtoB": entry or ENTRY}}


def test_a_record_keeps_the_summary_measures_and_drops_the_per_image_lists():
    kept = compact(ENTRY)
    assert kept == {"attention": {"iou_mean": 0.5, "mae_mean": 0.25},
                    "background": {"psnr_mean": 30.0, "l1_mean": 0.01, "foreground_l1_mean": 0.2},
                    "classifier": {"target_fraction": 0.75, "feature_kid_x100": {"mean": 1.5}}}
    assert compact({"attention": None, "background": {"psnr_mean": 12.0}}) == {"background": {"psnr_mean": 12.0}}
    assert measure_value(None, ("attention", "iou_mean")) is None
    assert measure_value({"attention": None}, ("attention", "iou_mean")) is None


def test_records_of_runs_made_apart_give_one_table_per_setting():
    records = [make_record(row("attentiongan"), SETTINGS), make_record(row("aggan", entry={"attention": None,
               "background": {"psnr_mean": 20.0, "l1_mean": 0.1, "foreground_l1_mean": 0.05}}), SETTINGS),
               make_record(row("saagan"), {**SETTINGS, "prefix": "h128_masks", "extra": ["--attention_prior", "masks"]})]
    groups = group_by_settings(records)
    assert [[r["benchmark"]["model"] for r in group] for group in groups] == [["attentiongan", "aggan"], ["saagan"]]
    summary = summary_of_records(records)
    first, second = summary.split("Dataset d (128 px); 13340 (10 epochs of 1334) training images per model")[1:]
    assert "| attentiongan | AtoB | 0.500 | 0.250 | 30.000 | 0.010 | 0.200 | 0.750 | 1.500 |" in first
    assert "| aggan | AtoB | - | - | 20.000 | 0.100 | 0.050 | - | - |" in first
    assert "saagan" not in first and "| saagan | AtoB |" in second
    assert "extra train.py options: --attention_prior masks" in second
    assert "- attentiongan (seed 0): 0:01:40 for 400 images, 0.250 s/img on some CPU, bf16" in first
    assert "held-out accuracy 0.860\n" in first
    assert "Precision:" not in summary


def test_a_summary_says_when_its_runs_were_measured_by_different_classifiers():
    records = [make_record(row("attentiongan"), SETTINGS), make_record(row("aggan", accuracy=0.84), SETTINGS)]
    assert "held-out accuracy 0.840, 0.860 (the runs were measured with different classifiers)" in summary_of_records(
        records)


def test_a_summary_says_when_its_seeds_trained_at_different_precisions():
    # --precision auto is one setting, so the seeds group together; the machine decided bf16 or fp32.
    records = [make_record(row("attentiongan"), SETTINGS), make_record(row("attentiongan", seed=1, precision="fp32"),
                                                                       SETTINGS)]
    summary = summary_of_records(records)
    assert "seeds 0, 1" in summary and "Precision: the runs trained in bf16, fp32" in summary
    assert "- attentiongan (seed 1): 0:01:40 for 400 images, 0.250 s/img on some CPU, fp32" in summary


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text(json.dumps({"directions": {}}))
    result = run_script("scripts/attention_benchmark.py", "--from_records", bad)
    assert result.returncode == 2 and f"{bad} is not a run record" in result.stderr
    assert "Traceback" not in result.stderr
    refused = run_script("scripts/attention_benchmark.py", "--model", "cycle_gan", "--record", bad)
    assert refused.returncode == 2 and "--record" in refused.stderr and "is a file" in refused.stderr
    assert "train.py" not in refused.stdout and "Traceback" not in refused.stderr  # refused before any training
    missing = run_script("scripts/attention_benchmark.py", "--from_records", tmp_path / "absent.json")
    assert missing.returncode == 2 and "absent.json" in missing.stderr and "Traceback" not in missing.stderr


def test_a_benchmark_run_leaves_a_record_that_rebuilds_its_summary(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2, size=(36, 36))
    records = tmp_path / "records"
    benchmark = ["--dataroot", data, "--size", "32", "--model", "attentiongan", "--gpu_ids", "-1", "--precision", "fp32",
                 "--max_iters", "0", "--epoch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1", "--prefix", "t",
                 "--checkpoints_dir", tmp_path / "ckpt", "--results_dir", tmp_path / "results", "--record", records,
                 "--summary", tmp_path / "summary.md", "--", "--save_epoch_freq", "1", "--num_threads", "0",
                 "--no_progress"]
    ran = run_script("scripts/attention_benchmark.py", *benchmark)
    assert ran.returncode == 0, ran.stderr[-3000:]
    record = load_records([records / "t_attentiongan.json"])[0]
    assert record["settings"]["extra"] == ["--save_epoch_freq", "1", "--num_threads", "0", "--no_progress"]
    assert record["benchmark"]["images"] == 4 and record["benchmark"]["precision"] == "fp32"
    assert 0 <= record["directions"]["AtoB"]["attention"]["iou_mean"] <= 1
    with Image.open(records / "t_attentiongan_keys.png") as keys:  # 2 test images with masks, 4 tiles each
        assert keys.size == (4 * 96, 2 * 96)
    over_time = (records / "t_attentiongan_attention.md").read_text()
    assert over_time.startswith("Attention of t_attentiongan") and "plot: t_attentiongan_attention.png" in over_time
    assert "| 1 | A |" in over_time and "| 2 | A |" in over_time and (records / "t_attentiongan_attention.png").is_file()
    rebuilt = run_script("scripts/attention_benchmark.py", "--from_records", records / "t_attentiongan.json",
                         "--summary", tmp_path / "rebuilt.md")
    assert rebuilt.returncode == 0, rebuilt.stderr
    table = [line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("| attentiongan")]
    assert table and table == [line for line in (tmp_path / "rebuilt.md").read_text().splitlines()
                               if line.startswith("| attentiongan")]


def test_a_failing_step_stops_the_benchmark_with_its_status_and_how_to_go_on(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=2, size=(36, 36))
    failed = run_script("scripts/attention_benchmark.py", "--dataroot", data, "--size", "32", "--model", "cycle_gan",
                        "--gpu_ids", "-1", "--checkpoints_dir", tmp_path / "ckpt", "--", "--no_such_option")
    assert failed.returncode == 2 and "train.py stopped with exit status 2" in failed.stderr
    assert "run the same benchmark command again" in failed.stderr and "Traceback" not in failed.stderr


def at_scale(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/benchmark_at_scale.sh", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": "echo"})


def test_the_at_scale_script_runs_what_is_asked_and_names_what_it_does_not_know():
    names = at_scale("list").stdout.split()
    assert len(names) == 28 and "h128_uait" in names and "h128_masks10_dgjw_attentiongan" in names
    chosen = at_scale("horse2zebra", "h128_uait", "h128_masks10_saagan", "h128_cycle1_uait",
                      "h128_nomap_guidegan", "h128_cycle1s8_uait", "h128_cycle1paper_uait").stdout.splitlines()
    assert len(chosen) == 6
    assert "--model uait --prefix h128 " in chosen[0] and "--record docs/at_scale" in chosen[0]
    assert "--model saagan --prefix h128_masks10 " in chosen[1] and "--mask_fraction 0.1" in chosen[1]
    # The recipe-or-scale controls change only what they name.
    assert "--model uait --prefix h128_cycle1 " in chosen[2] and chosen[2].endswith("--lambda_A 1 --lambda_B 1")
    assert "--prefix h128_cycle1s8 " in chosen[3] and chosen[3].endswith("--lambda_B 1 --switch_epoch 8")
    assert "--prefix h128_cycle1paper " in chosen[4] and chosen[4].endswith("--lambda_B 1 --attention_head paper")
    assert "--model guidegan --prefix h128_nomap " in chosen[5] and chosen[5].endswith("--join none")
    budget = {line.split("--record docs/at_scale")[1].split(" -- ")[0] for line in (chosen[0], *chosen[2:])}
    assert len(budget) == 1 and "--epoch_size 1334" in budget.pop()
    unknown = at_scale("horse2zebra", "h128_foo")
    assert unknown.returncode == 2 and "no run named h128_foo" in unknown.stderr and unknown.stdout == ""


def test_the_committed_records_are_valid_and_make_the_summary():
    paths = sorted((ROOT / "docs" / "at_scale").glob("*.json"))
    records = load_records(paths)
    summary = summary_of_records(records)
    for record in records:
        name = f"{record['settings']['prefix']}_{record['benchmark']['model']}"
        assert (ROOT / "docs" / "at_scale" / f"{name}_keys.png").is_file()
        assert f"| {record['benchmark']['model']} | AtoB |" in summary
    printed = at_scale("summary").stdout
    assert "--from_records" in printed and all(str(path.relative_to(ROOT)) in printed for path in paths)
