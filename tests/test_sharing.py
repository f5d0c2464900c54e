"""Safe to share: no input or run is overwritten, one run per folder, results stay inside their
folder, bad images and names are reported by name, and the small messages say the right thing."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import translate as translate_script
from tests.conftest import FAST, ROOT, make_unaligned, run_script, write_image
from tests.test_translate import CycleGANResnetLayout, trained_run
from util.errors import DiskFull, run_cli
from util.run_lock import LOCK_FILE, RunLock


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def translate_args(tmp_path, model: str, source, output, *extra: str) -> list[str]:
    return ["--name", model, "--checkpoints_dir", str(tmp_path / "ckpt"), "--input", str(source), "--output", str(output),
            "--gpu_ids", "-1", "--num_threads", "0", "--no_progress", *extra]


# --------------------------------------------------------------------------- translate.py
def test_translate_never_writes_over_its_input(tmp_path, capsys):
    trained_run(tmp_path, "attentiongan")
    image = write_image(tmp_path / "dir" / "normal.png", np.full((32, 32, 3), 90, np.uint8))
    write_image(tmp_path / "dir" / "x.png", np.full((32, 32, 3), 9, np.uint8))
    write_image(tmp_path / "dir" / "x_attention.png", np.full((32, 32, 3), 9, np.uint8))
    before = md5(image)
    assert translate_script.main(translate_args(tmp_path, "attentiongan", image, tmp_path / "dir")) == 2
    assert "would be written over the input" in capsys.readouterr().err and md5(image) == before
    # an attention map named like another input is an input too
    code = translate_script.main(translate_args(tmp_path, "attentiongan", tmp_path / "dir" / "x.png", tmp_path / "dir",
                                                "--save_masks"))
    assert code == 2 and md5(image) == before


def test_translate_reports_a_tiny_image_by_name_and_goes_on(tmp_path, capsys):
    trained_run(tmp_path, "attentiongan")
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in" / "a_tiny.png", rng.integers(0, 255, (3, 4, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "b_fine.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "c_fine.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    code = translate_script.main(translate_args(tmp_path, "attentiongan", tmp_path / "in", tmp_path / "out",
                                                "--batch_size", "3"))
    err = capsys.readouterr().err
    assert code == 1 and "a_tiny.png: 4x3 px cannot be translated" in err
    assert (tmp_path / "out" / "b_fine.png").exists() and (tmp_path / "out" / "c_fine.png").exists()


def test_translate_checks_the_output_before_loading_the_model(tmp_path, capsys):
    trained_run(tmp_path, "cycle_gan")
    write_image(tmp_path / "in" / "a.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "a_file").write_text("x")
    assert translate_script.main(translate_args(tmp_path, "cycle_gan", tmp_path / "in", tmp_path / "a_file")) == 2
    assert "is a file" in capsys.readouterr().err
    # a folder that cannot be created (a file in its path); root can write into read-only folders
    assert translate_script.main(translate_args(tmp_path, "cycle_gan", tmp_path / "in", tmp_path / "a_file" / "out")) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_a_250_byte_file_name_translates_and_tests(tmp_path):
    trained_run(tmp_path, "attentiongan")
    name = "n" * 246 + ".png"
    write_image(tmp_path / "in" / name, np.full((32, 32, 3), 120, np.uint8))
    assert translate_script.main(translate_args(tmp_path, "attentiongan", tmp_path / "in", tmp_path / "out",
                                                "--save_masks")) == 0
    assert (tmp_path / "out" / name).exists() and len(list((tmp_path / "out").glob("*_attention.png"))) == 1
    data = tmp_path / "data"
    for side in "AB":
        write_image(data / f"test{side}" / name, np.full((36, 36, 3), 120, np.uint8))
    result = run_script("test.py", "--model", "attentiongan", "--name", "attentiongan", "--checkpoints_dir",
                        tmp_path / "ckpt", "--dataroot", data, "--gpu_ids", "-1",
                        "--results_dir", tmp_path / "res", "--crop_size", "32", "--load_size", "32", "--no_progress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "res" / "attentiongan" / "test_latest" / "index.html").exists()


# --------------------------------------------------------------------------- converters
def test_converters_refuse_an_existing_run_and_a_file_that_is_no_state_dict(tmp_path, capsys):
    from scripts.convert_attentiongan_weights import main as convert_attentiongan
    from scripts.convert_cyclegan_weights import main as convert_cyclegan

    trained_run(tmp_path, "cycle_gan")
    latest = tmp_path / "ckpt" / "cycle_gan" / "latest.pt"
    before = md5(latest)
    generator = tmp_path / "g.pth"
    torch.save(CycleGANResnetLayout(ngf=4, n_blocks=3).state_dict(), generator)
    common = ["--name", "cycle_gan", "--checkpoints_dir", str(tmp_path / "ckpt")]
    assert convert_cyclegan(["--G_A", str(generator), *common]) == 2
    assert "already has checkpoints" in capsys.readouterr().err and md5(latest) == before
    assert convert_cyclegan(["--G_A", str(generator), *common, "--overwrite"]) == 0 and md5(latest) != before
    assert convert_attentiongan(["--G_A", str(generator), "--G_B", str(generator), *common]) == 2
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert convert_attentiongan(["--G_A", str(tmp_path / "notes.txt"), "--G_B", str(generator), "--name", "new",
                                 "--checkpoints_dir", str(tmp_path / "ckpt")]) == 2
    assert "is not a PyTorch state_dict" in capsys.readouterr().err


# --------------------------------------------------------------------------- one run per folder
def test_a_second_train_on_the_same_run_is_refused_naming_the_first(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=4, n_b=4)
    common = ["train.py", *FAST, "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"), "--name", "run",
              "--model", "cycle_gan"]
    first = subprocess.Popen([sys.executable, *common, "--n_epochs", "200", "--n_epochs_decay", "0"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "ckpt" / "run" / LOCK_FILE
    try:
        for _ in range(600):
            options = tmp_path / "ckpt" / "run" / "train_opt.txt"
            if lock.exists() and json.loads(lock.read_text() or "{}").get("pid") == first.pid and options.exists():
                break
            assert first.poll() is None, first.communicate()[1][-2000:]
            time.sleep(0.1)
        second = run_script(*common, "--lr", "0.001")  # a fresh start on the running run's folder
        resumed = run_script(*common, "--continue_train")  # and a resume beside it
        assert resumed.returncode == 2 and f"PID {first.pid} on this host" in resumed.stderr
        assert second.returncode == 2 and f"PID {first.pid} on this host" in second.stderr
        assert "0.001" not in options.read_text()
    finally:
        first.kill()
        first.communicate()
    # the killed run left its lock: stale, because its PID is gone
    assert lock.exists()
    holder = RunLock(tmp_path / "ckpt" / "run")
    holder.acquire()
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    holder.release()
    assert not lock.exists()


def test_a_lock_of_another_host_is_named_and_not_taken(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": socket.gethostname() + "-elsewhere"}))
    with pytest.raises(Exception, match="elsewhere"):
        RunLock(run_dir).acquire()


# --------------------------------------------------------------------------- results and reports
def test_results_json_cannot_point_outside_its_folder(tmp_path):
    from evaluation.translations import load_manifest

    folder = tmp_path / "results"
    folder.mkdir()
    outside = write_image(tmp_path / "secret.png", np.zeros((8, 8, 3), np.uint8))
    for file in ("../secret.png", str(outside)):
        manifest = {"meta": {}, "rows": [{"id": "0", "paths": {}, "visuals": {"fake_B": {"file": file}}}]}
        (folder / "results.json").write_text(json.dumps(manifest))
        with pytest.raises(Exception, match="points outside the results folder"):
            load_manifest(folder)


def test_page_links_keep_hash_and_question_marks_in_names(tmp_path):
    from util.html import HTMLPage

    page = HTMLPage(tmp_path, "t")
    page.add_images([("images/a#1?.png", "x")])
    html = page.save().read_text()
    assert 'src="images/a%231%3F.png"' in html and 'href="images/a%231%3F.png"' in html


def test_leaderboard_markdown_escapes_html_in_run_names():
    from evaluation.leaderboard import markdown_text

    assert markdown_text("<img src=x onerror=alert(1)>|x") == "&lt;img src=x onerror=alert(1)&gt;\\|x"


def test_disk_full_hint_only_where_there_is_something_to_resume(capsys):
    def full():
        raise DiskFull("no space left on /dev/x while writing out.png; nothing was overwritten. Free space and run "
                       "the command again")

    assert run_cli(full) == 2 and "--continue_train" not in capsys.readouterr().err
    assert run_cli(full, interrupted_hint="resume with --continue_train") == 2
    assert "--continue_train" in capsys.readouterr().err


def test_fp16_on_a_cpu_says_it_is_slow(capsys):
    from models import create_model
    from options import parse_train_options

    create_model("cycle_gan", parse_train_options(["--model", "cycle_gan", *FAST, "--precision", "fp16"]),
                 torch.device("cpu"))
    assert "20x slower" in capsys.readouterr().out


def test_evaluate_says_when_a_translation_differs_in_size_from_its_input(tmp_path):
    from evaluation.evaluate import image_measures, summarise_offline
    from evaluation.translations import MaskRef, Translation

    rng = np.random.default_rng(0)
    source = write_image(tmp_path / "in.png", rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    output = write_image(tmp_path / "out.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    mask = write_image(tmp_path / "mask.png", (rng.random((40, 48)) > 0.5).astype(np.uint8) * 255)
    record = image_measures(Translation("0", source, source, output, mask=MaskRef(mask)), tmp_path)
    assert record["input_resized_from"] == [48, 40]
    _, notes = summarise_offline([record], has_attention=False, paired=False)
    assert any("differ in size from their input" in note and "48x40" in note for note in notes)


def test_a_two_way_model_on_one_folder_of_data_is_a_clear_error(tmp_path):
    trained_run(tmp_path, "attentiongan")
    write_image(tmp_path / "single" / "a.png", np.zeros((36, 36, 3), np.uint8))
    from tests.conftest import entry_point

    code = entry_point("test.py")(["--model", "attentiongan", "--name", "attentiongan", "--checkpoints_dir",
                                   str(tmp_path / "ckpt"), "--dataroot", str(tmp_path / "single"), "--dataset_mode",
                                   "single", "--gpu_ids", "-1", "--results_dir", str(tmp_path / "res"), "--crop_size", "32",
                                   "--load_size", "32", "--no_progress"])
    assert code == 2
