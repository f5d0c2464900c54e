"""scripts/gpu_check.py on the CPU: it says there is no CUDA and exits 0; its configurations,
arguments and report are checked without a GPU."""

from __future__ import annotations

import subprocess

from scripts.gpu_check import build_parser, configurations, main, report
from tests.conftest import ROOT


def test_without_cuda_it_says_so_and_exits_0(capsys):
    assert main(["--out", "/nonexistent/never_written.md"]) == 0
    assert "no CUDA device here" in capsys.readouterr().out


def test_the_shell_wrapper_runs_it():
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--models", "cycle_gan"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "no CUDA device here" in done.stdout


def test_every_model_in_three_precisions_then_compile_options():
    args = build_parser().parse_args(["--size", "128", "--compile_models", "cycle_gan"])
    configs = configurations(args, ["cycle_gan", "uait"])
    plain = [(c["model"], c["precision"]) for c in configs if c["options"] == "none"]
    assert plain == [("cycle_gan", "fp32"), ("cycle_gan", "bf16"), ("cycle_gan", "fp16"), ("uait", "fp32"),
                     ("uait", "bf16"), ("uait", "fp16")]
    assert [c["options"] for c in configs if c["options"] != "none"] == ["compile", "channels_last",
                                                                          "channels_last+compile"]
    assert all(c["size"] == 128 and c["no_loader"] for c in configs)


def test_report_has_the_device_command_table_and_checks():
    from scripts.benchmark_speed import table

    config = {"model": "cycle_gan", "options": "none", "batch_size": 1}
    results = [{"config": {**config, "precision": "fp32"}, "seconds_per_step": 0.2, "peak_memory_mb": 900.0},
               {"config": {**config, "precision": "bf16"}, "seconds_per_step": 0.1, "peak_memory_mb": 600.0}]
    checks = [{"check": "finite losses and resume (attentiongan, bf16)", "ok": True, "detail": "8 records"},
              {"check": "torchrun, 2 processes on nccl", "ok": None, "detail": "skipped: 1 GPU"}]
    meta = {"device": "NVIDIA H200", "torch": "2.11", "cuda": "12.8", "date": "2026-11-30",
            "command": "python scripts/gpu_check.py"}
    text = report(meta, table(results, loader_only=False), checks, [{"model": "uait", "precision": "fp16",
                                                                      "options": "none"}])
    assert "Device: NVIDIA H200" in text and "    python scripts/gpu_check.py" in text
    assert "| cycle_gan | none | 1 | bf16 | 0.100 | 10.00 |" in text and "2.00x" in text
    assert "| finite losses and resume (attentiongan, bf16) | passed |" in text and "| skipped |" in text
    assert "Not measured (the time budget ran out): uait fp16 none" in text


def test_a_partial_report_says_what_is_still_to_come():
    from scripts.benchmark_speed import table

    results = [{"config": {"model": "cycle_gan", "options": "none", "batch_size": 1, "precision": "fp32"},
                "seconds_per_step": 0.2, "peak_memory_mb": 900.0}]
    meta = {"device": "NVIDIA H200", "torch": "2.11", "cuda": "13.0", "date": "2026-12-01", "command": "python x"}
    partial = report(meta, table(results, loader_only=False), [], [], pending=5)
    assert "Partial report: 5 configurations still to measure; the checks have not run yet." in partial
    assert "| cycle_gan | none | 1 | fp32 | 0.200 |" in partial
    checks = [{"check": "torchrun, 2 processes on nccl", "ok": None, "detail": "skipped: 1 GPU"}]
    assert "Partial report" not in report(meta, table(results, loader_only=False), checks, [])


def test_a_configuration_that_outlasts_its_timeout_is_an_error_row():
    from scripts.benchmark_speed import run_config

    config = {"model": "cycle_gan", "options": "none", "precision": "fp32", "size": 64, "steps": 1, "warmup": 0,
              "dataroot": None, "num_threads": None, "gpu_ids": "-1", "no_loader": True, "loader_only": False,
              "network": "", "batch_size": 1}
    assert run_config(config, timeout=0.01) == {"config": config, "error": "timed out after 0s"}


def test_a_timeout_or_budget_of_zero_is_refused_with_exit_2(capsys):
    import pytest

    for option in ("--config_timeout", "--budget_minutes"):
        with pytest.raises(SystemExit) as stop:
            main([option, "0"])
        assert stop.value.code == 2 and f"{option} 0.0: must be > 0" in capsys.readouterr().err
