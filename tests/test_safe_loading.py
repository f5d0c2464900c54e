"""No code runs from a checkpoint: every entry point that reads a user's file refuses a pickle that
would call a function (the marker file it would create must not appear), with exit status 2 and a
message; checkpoints of the older layout (NumPy random states) still load."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import entry_point, write_image
from util.checkpoint import FORMAT_VERSION, capture_rng_state, load_checkpoint, restore_rng_state, safe_load


class RunsACommand:
    """Unpickling this calls ``os.system``: what a crafted checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted_checkpoint(path: Path, marker: Path, kind: str | None = None) -> Path:
    content = {"format_version": FORMAT_VERSION, "model": "cycle_gan", "architecture": {}, "options": {},
               "progress": {"epoch": 2, "position": 0, "total_iters": 1}, "state": {"networks": {}}, "ranks": [],
               "payload": RunsACommand(marker)}
    if kind:
        content["kind"] = kind
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return path


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "code_ran"
    crafted_checkpoint(tmp_path / "ckpt" / "evil" / "latest.pt", marker)
    crafted_checkpoint(tmp_path / "classifier.pt", marker, kind="domain_classifier")
    (tmp_path / "results").mkdir()
    write_image(tmp_path / "in" / "a.png", np.zeros((32, 32, 3), np.uint8))
    return tmp_path, marker


def entry_points(root: Path) -> dict[str, tuple[str, list[str]]]:
    run = ["--name", "evil", "--checkpoints_dir", str(root / "ckpt"), "--gpu_ids", "-1"]
    data = ["--dataroot", str(root / "in")]
    return {
        "test.py": ("test.py", [*run, *data, "--model", "cycle_gan", "--dataset_mode", "single"]),
        "train.py --continue_train": ("train.py", [*run, *data, "--model", "cycle_gan", "--dataset_mode", "single",
                                                    "--continue_train", "--display_id", "0"]),
        "translate.py": ("translate.py", [*run, "--input", str(root / "in"), "--output", str(root / "out")]),
        "export_generator.py": ("scripts/export_generator.py", [*run[:4], "--out", str(root / "exported")]),
        "evaluate.py --classifier": ("scripts/evaluate.py", ["--results", str(root / "results"), "--no_inception",
                                                             "--classifier", str(root / "classifier.pt"), "--gpu_ids", "-1"]),
        "saagan --cam_classifier": ("train.py", [*data, "--name", "sa", "--checkpoints_dir", str(root / "ckpt"),
                                                  "--gpu_ids", "-1", "--model", "saagan", "--dataset_mode", "single",
                                                  "--cam_classifier", str(root / "classifier.pt"), "--display_id", "0"]),
    }


@pytest.mark.parametrize("entry", ["test.py", "train.py --continue_train", "translate.py", "export_generator.py",
                                   "evaluate.py --classifier", "saagan --cam_classifier"])
def test_a_crafted_file_runs_no_code_at_any_entry_point(evil, entry, capsys):
    root, marker = evil
    script, argv = entry_points(root)[entry]
    code = entry_point(script)(argv)
    error = capsys.readouterr().err
    assert not marker.exists(), f"{entry} ran code from the file"
    assert code == 2 and "refused" in error and "would run" in error, error[-2000:]


def test_checkpoints_hold_no_python_objects_and_older_ones_still_load(tmp_path):
    state = capture_rng_state()
    torch.save({"rng": state}, tmp_path / "new.pt")
    assert not torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "new.pt")
    np.random.seed(3)
    expected = np.random.rand(3)
    np.random.seed(3)
    older = {"format_version": FORMAT_VERSION, "rng": {**capture_rng_state(), "numpy": np.random.get_state()}}
    torch.save(older, tmp_path / "old.pt")  # the layout before the tensor form: NumPy's own tuple
    np.random.seed(99)
    restore_rng_state(safe_load(tmp_path / "old.pt")["rng"])
    assert np.allclose(np.random.rand(3), expected)
    np.random.seed(3)
    torch.save({"rng": capture_rng_state()}, tmp_path / "tensor_form.pt")
    np.random.seed(99)
    restore_rng_state(safe_load(tmp_path / "tensor_form.pt")["rng"])
    assert np.allclose(np.random.rand(3), expected)
    assert load_checkpoint(tmp_path / "old.pt")["format_version"] == FORMAT_VERSION
