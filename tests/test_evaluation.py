"""The shared evaluation: evaluate.py, compare.py and train_domain_classifier.py on tiny runs.

A tiny unaligned dataset with masks; cycle_gan and aggan trained for a few iterations and
tested; then every measure, report and leaderboard is checked.

NOTE ON FID/KID: this machine has no internet and therefore no Inception weights. The FID/KID
*plumbing* (which images are compared with which, subset sampling, reporting) is exercised with
:class:`StandInFeatures`, a STAND-IN feature extractor (a fixed random projection of pooled
pixels). It is NOT the Inception network; its numbers mean nothing and are labelled as stand-in
in every report. The real Inception path is only tested for refusing to run without weights.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from evaluation import metrics
from evaluation.evaluate import UAIT_KID, DistributionFeatures, evaluate_run, features_of
from evaluation.inception import INCEPTION_WEIGHTS_FILENAME
from evaluation.leaderboard import write_leaderboard
from evaluation.report import write_report
from evaluation.translations import group_translations
from tests.conftest import make_unaligned, run_ok, write_image

TRAIN = ["--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32",
         "--num_threads", "0", "--display_id", "0", "--no_progress", "--batch_size", "2", "--n_epochs", "1",
         "--n_epochs_decay", "0"]
TEST = ["--gpu_ids", "-1", "--ngf", "4", "--netG", "resnet_6blocks", "--crop_size", "32", "--num_test", "0", "--no_progress"]
MODELS = ("cycle_gan", "aggan")


class StandInFeatures:
    """STAND-IN feature extractor for tests ONLY; NOT Inception and not meaningful as a measure.

    A fixed random projection of 8x8-pooled pixels to 16 dimensions: enough to check that
    FID/KID receive the right images, nothing more.
    """

    def __init__(self, dim: int = 16, seed: int = 0) -> None:
        self.projection = torch.randn(3 * 8 * 8, dim, generator=torch.Generator().manual_seed(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.float() / 255.0, 8).flatten(1) @ self.projection


STAND_IN = DistributionFeatures(StandInFeatures(), "STAND-IN for tests: random projection of pooled pixels", None, False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Two tiny trained and tested runs on 5 A / 4 B test images (so B repeats once)."""
    tmp = tmp_path_factory.mktemp("evaluation")
    data = make_unaligned(tmp / "data", n_a=5, n_b=4, size=(40, 36))
    common = ["--dataroot", str(data), "--checkpoints_dir", str(tmp / "ckpt")]
    for m in MODELS:
        run_ok("train.py", "--name", m, "--model", m, *common, *TRAIN)
        run_ok("test.py", "--name", m, "--model", m, *common, "--results_dir", str(tmp / "results"), *TEST)
    results = {m: tmp / "results" / m / "test_latest" for m in MODELS}
    evaluated = {}
    for model, folder in results.items():
        evaluated[model] = evaluate_run(folder, features=STAND_IN, kid=UAIT_KID, progress=False)
        write_report(evaluated[model], folder, folder)
    return {"tmp": tmp, "data": data, "results": results, "metrics": evaluated}


def image_sources(html: Path) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]+)"', html.read_text(encoding="utf-8"))


def assert_images_exist_and_load(html: Path) -> None:
    sources = image_sources(html)
    assert sources, html
    for src in sources:
        assert (html.parent / src).is_file(), src
    from tests.browser import chromium_missing_reason, image_load_report

    if chromium_missing_reason() is None:
        broken = [item["src"] for item in image_load_report(html) if item["naturalWidth"] <= 0]
        assert not broken, broken


# --------------------------------------------------------------------------- end to end
def test_directions_are_deduplicated_and_attention_only_where_saved(runs):
    for model, result in runs["metrics"].items():
        directions = result["directions"]
        assert set(directions) == {"AtoB", "BtoA"}
        assert directions["AtoB"]["n_images"] == 5 and directions["AtoB"]["repeated_inputs_skipped"] == 0
        assert directions["BtoA"]["n_images"] == 4 and directions["BtoA"]["repeated_inputs_skipped"] == 1
        assert directions["AtoB"]["n_target_real"] == 4 and directions["AtoB"]["n_source_real"] == 5
        for entry in directions.values():
            background = entry["background"]
            assert background["n"] == entry["n_images"]
            assert math.isfinite(background["psnr_mean"]) and 0 < background["psnr_mean"] < 100
            assert 0 <= background["l1_mean"] <= 1 and 0 <= background["foreground_l1_mean"] <= 1
            assert entry["paired"] is None and len(entry["per_image"]) == entry["n_images"]
            if model == "aggan":
                attention = entry["attention"]
                assert attention["n"] == entry["n_images"]
                assert 0 <= attention["mae_mean"] <= 1 and 0 <= attention["iou_mean"] <= 1
                assert all(0 <= r["attention_mae"] <= 1 for r in entry["per_image"])
            else:
                assert entry["attention"] is None
                assert any("no attention maps" in note for note in entry["notes"])


def test_stand_in_kid_compares_the_deduplicated_translations_with_the_real_test_folders(runs):
    """Recompute AtoB's (stand-in) KID from the files directly: the plumbing picked the right sets."""
    entry = runs["metrics"]["aggan"]["directions"]["AtoB"]
    fakes = [runs["results"]["aggan"] / r["output"] for r in entry["per_image"]]
    data = runs["data"]
    target = sorted((data / "testB").glob("*.png"))
    source = sorted((data / "testA").glob("*.png"))
    feats = [features_of(paths, (32, 32), STAND_IN.extractor, 50, "", False) for paths in (fakes, target, source)]
    with pytest.warns(UserWarning):  # the subset size 50 is capped to the set size
        expected = metrics.mean_kid(*feats, n_subsets=10, subset_size=50, seed=0)
    assert entry["kid_x100"]["mean"] == pytest.approx(100 * expected["kid_target"])
    assert entry["kid_x100"]["subset_size"] == 4  # min(50, 5 translations, 4 real B)
    assert entry["mean_kid_x100"]["mean"] == pytest.approx(100 * expected["mean_kid"])
    assert entry["mean_kid_x100"]["source"]["subset_size"] == 5
    assert entry["fid"] == pytest.approx(metrics.fid_from_features(feats[0], feats[1]))
    meta = runs["metrics"]["aggan"]["meta"]
    assert meta["features"]["standard"] is False and meta["kid"]["protocol"].startswith("uait")
    assert meta["kid"]["effective_subset_size"]["AtoB"] == {"target": 4, "source": 5}


def test_reports_are_written_and_label_stand_in_features(runs):
    folder = runs["results"]["aggan"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["directions"]["AtoB"]["n_images"] == 5
    table = (folder / "metrics.md").read_text()
    assert "| measure | AtoB | BtoA |" in table and "attention MAE" in table and "STAND-IN" in table
    html = (folder / "evaluation.html").read_text()
    assert "STAND-IN" in html and "best by background PSNR" in html and "worst by attention MAE" in html
    assert "attention_mae_hist.png" in html and "background_psnr.png" in html
    assert not list(folder.glob(".*.tmp"))
    assert_images_exist_and_load(folder / "evaluation.html")


def test_classifier_and_offline_cli(runs, capsys):
    from scripts.train_domain_classifier import main as train_classifier

    tmp, data = runs["tmp"], runs["data"]
    checkpoint = tmp / "classifier.pt"
    assert train_classifier(["--dataroot", str(data), "--out", str(checkpoint), "--size", "32", "--epochs", "2",
                             "--batch_size", "4", "--gpu_ids", "-1", "--no_progress"]) == 0
    assert "held-out accuracy on the test folders" in capsys.readouterr().out
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["kind"] == "domain_classifier" and saved["format_version"] == 1
    assert 0 <= saved["accuracy"]["accuracy"] <= 1 and saved["architecture"]["input_size"] == 32

    out = tmp / "offline"
    run_ok("scripts/evaluate.py", "--results", str(runs["results"]["aggan"]), "--no_inception", "--classifier",
               str(checkpoint), "--kid_protocol", "uait", "--gpu_ids", "-1", "--out", str(out), "--no_progress")
    result = json.loads((out / "metrics.json").read_text())
    assert result["meta"]["features"] is None and result["meta"]["classifier"]["path"] == str(checkpoint)
    for name, entry in result["directions"].items():
        assert entry["fid"] is None and entry["kid_x100"] is None
        assert any("--no_inception" in note for note in entry["notes"])
        assert 0 <= entry["classifier"]["target_fraction"] <= 1
        assert entry["classifier"]["feature_kid_x100"]["subset_size"] == 4
        assert "NOT Inception" in entry["classifier"]["feature_kid_note"]
        in_process = runs["metrics"]["aggan"]["directions"][name]
        assert entry["attention"]["mae_mean"] == pytest.approx(in_process["attention"]["mae_mean"])
    assert "classifier-feature KID x100 (not Inception)" in (out / "metrics.md").read_text()


def test_missing_inception_weights_are_named_and_never_replaced_by_random_weights(runs, tmp_path, monkeypatch, capsys):
    """The real Inception path without weights: FID/KID are not computed (the rest is, exit 0) and
    the file is named; an explicit --inception_weights that does not exist is exit 2."""
    from scripts.evaluate import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    assert main(["--results", str(runs["results"]["aggan"]), "--out", str(tmp_path / "out"), "--gpu_ids", "-1",
                 "--no_progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: FID/KID not computed") and "Traceback" not in err
    assert INCEPTION_WEIGHTS_FILENAME in err and "--inception_weights" in err
    assert str(tmp_path / "empty_torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME) in err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["meta"]["features"] is None and INCEPTION_WEIGHTS_FILENAME in metrics["meta"]["fid_kid_not_computed"]
    assert main(["--results", str(runs["results"]["aggan"]), "--inception_weights", str(tmp_path / "nope.pth"),
                 "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "nope.pth") in err and "--no_inception" in err
    assert not (tmp_path / "out2" / "metrics.json").exists()


def test_compare_builds_a_leaderboard(runs, tmp_path):
    folders = [runs["results"][m] for m in MODELS]
    result = run_ok("scripts/compare.py", *map(str, folders), "--out", str(tmp_path / "board"))
    assert "leaderboard.html" in result.stdout
    table = (tmp_path / "board" / "leaderboard.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 3 and "cycle_gan (cycle_gan, latest)" in table and "aggan (aggan, latest)" in table
    header = lines[0].split(" | ")
    column = header.index("background PSNR (dB) AtoB ↑")
    values = [line.split(" | ")[column] for line in lines[1:]]
    psnrs = [runs["metrics"][m]["directions"]["AtoB"]["background"]["psnr_mean"] for m in MODELS]
    best = int(np.argmax(psnrs))
    assert values[best].startswith("**") and not values[1 - best].startswith("**")
    assert "STAND-IN" in table
    for measure in ("fid", "kid_x100", "mean_kid_x100", "background_psnr", "attention_mae"):
        assert (tmp_path / "board" / "leaderboard_files" / f"{measure}.png").stat().st_size > 1000
    assert_images_exist_and_load(tmp_path / "board" / "leaderboard.html")


def test_compare_asks_to_evaluate_first(runs, tmp_path):
    from scripts.compare import main

    assert main([str(runs["results"]["aggan"]), str(tmp_path), "--out", str(tmp_path / "board")]) == 2
    with pytest.raises(Exception, match="evaluate.py"):
        write_leaderboard([tmp_path], tmp_path / "board")


def test_evaluate_cli_user_errors(tmp_path, capsys):
    from scripts.evaluate import main

    assert main(["--results", str(tmp_path), "--no_inception"]) == 2
    assert "results.json" in capsys.readouterr().err
    assert main(["--results", str(tmp_path), "--no_inception", "--kid_protocol", "uait", "--kid_subsets", "7"]) == 2
    assert "--kid_subsets 7" in capsys.readouterr().err


# --------------------------------------------------------------------------- hand-made manifests
def _picture(path: Path, value: int, size: int = 16) -> Path:
    return write_image(path, np.full((size, size, 3), value, np.uint8))


def write_manifest(folder: Path, meta: dict, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}))
    return folder


def unaligned_rows(folder: Path, a_files: list[Path], b_files: list[Path]) -> list[dict]:
    """Rows as test.py writes them for unaligned data: max(|A|, |B|) rows, the shorter side cycling."""
    rows = []
    for i in range(max(len(a_files), len(b_files))):
        row_id = f"{i:05d}_{a_files[i % len(a_files)].stem}"
        visuals = {}
        for side, other in (("A", "B"), ("B", "A")):
            for kind, name in (("real", f"real_{side}"), ("fake", f"fake_{other}")):
                file = f"images/{row_id}_{name}.png"
                _picture(folder / file, 40 + 10 * i)
                visuals[name] = {"file": file, "source": side, "kind": kind}
        rows.append({"id": row_id, "paths": {"A": str(a_files[i % len(a_files)]), "B": str(b_files[i % len(b_files)])},
                     "visuals": visuals})
    return rows


def test_grouping_deduplicates_repeated_inputs(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=3, phases=("test",))
    a_files, b_files = sorted((data / "testA").glob("*.png")), sorted((data / "testB").glob("*.png"))
    meta = {"name": "m", "model": "cycle_gan", "epoch": "latest", "dataroot": str(data), "phase": "test",
            "direction": "AtoB", "dataset_mode": "unaligned"}
    folder = write_manifest(tmp_path / "res", meta, unaligned_rows(tmp_path / "res", a_files, b_files))
    groups = group_translations(folder).groups
    assert list(groups) == ["AtoB", "BtoA"]
    assert [t.source_path for t in groups["AtoB"].translations] == a_files  # row 2 repeats A image 0
    assert groups["AtoB"].repeated_inputs_skipped == 1 and len(groups["BtoA"].translations) == 3
    assert groups["AtoB"].target_set.paths == tuple(b_files) and groups["AtoB"].source_set.paths == tuple(a_files)
    assert all(t.mask is not None for t in groups["AtoB"].translations)


def test_grouping_names_directions_by_the_dataroot_folders_under_BtoA(tmp_path):
    data = make_unaligned(tmp_path / "data", n_a=2, n_b=3, phases=("test",))
    a_files, b_files = sorted((data / "testA").glob("*.png")), sorted((data / "testB").glob("*.png"))
    meta = {"name": "m", "model": "cycle_gan", "epoch": "latest", "dataroot": str(data), "phase": "test",
            "direction": "BtoA", "dataset_mode": "unaligned"}
    # Under --direction BtoA the dataset swaps folders: the model's "A" inputs are testB files.
    folder = write_manifest(tmp_path / "res", meta, unaligned_rows(tmp_path / "res", b_files, a_files))
    groups = group_translations(folder).groups
    first = groups["BtoA"].translations[0]
    assert first.source_path == b_files[0] and first.output_file.name.endswith("fake_B.png")
    assert groups["BtoA"].source_domain == "B" and groups["BtoA"].target_set.paths == tuple(a_files)
    assert len(groups["BtoA"].translations) == 3 and len(groups["AtoB"].translations) == 2


def test_paired_psnr_and_ssim_on_aligned_data(tmp_path):
    rng = np.random.default_rng(0)
    data, folder = tmp_path / "pairs", tmp_path / "res"
    rows, expected = [], []
    for i in range(3):
        a, b = rng.integers(0, 256, (24, 24, 3), np.uint8), rng.integers(0, 256, (24, 24, 3), np.uint8)
        pair = write_image(data / "test" / f"p{i}.png", np.concatenate([a, b], axis=1))
        mask = np.zeros((24, 24), np.uint8)
        mask[4:12, 4:12] = 255
        write_image(data / "test_mask" / f"p{i}.png", mask)  # one mask shared by both halves
        fake = np.clip(b.astype(int) + rng.integers(-20, 20, b.shape), 0, 255).astype(np.uint8)
        visuals = {}
        pictures = (("real_A", a, "A", "real"), ("fake_B", fake, "A", "fake"), ("real_B", b, "B", "real"))
        for name, picture, source, kind in pictures:
            write_image(folder / "images" / f"{i:05d}_p{i}_{name}.png", picture)
            visuals[name] = {"file": f"images/{i:05d}_p{i}_{name}.png", "source": source, "kind": kind}
        rows.append({"id": f"{i:05d}_p{i}", "paths": {"A": str(pair), "B": str(pair)}, "visuals": visuals})
        expected.append((metrics.psnr(fake, b), metrics.ssim(fake, b), metrics.masked_psnr(a, fake, mask > 0)))
    meta = {"name": "p", "model": "pix2pix", "epoch": "latest", "dataroot": str(data), "phase": "test",
            "direction": "AtoB", "dataset_mode": "aligned"}
    write_manifest(folder, meta, rows)
    result = evaluate_run(folder, progress=False)
    assert list(result["directions"]) == ["AtoB"]
    entry = result["directions"]["AtoB"]
    assert [r["paired_psnr"] for r in entry["per_image"]] == pytest.approx([e[0] for e in expected])
    assert [r["paired_ssim"] for r in entry["per_image"]] == pytest.approx([e[1] for e in expected])
    assert entry["paired"]["psnr_mean"] == pytest.approx(np.mean([e[0] for e in expected]))
    assert entry["paired"]["ssim_mean"] == pytest.approx(np.mean([e[1] for e in expected]))
    assert [r["background_psnr"] for r in entry["per_image"]] == pytest.approx([e[2] for e in expected])
    assert entry["attention"] is None and entry["classifier"] is None
    assert entry["n_target_real"] == 3  # the B halves saved by test.py
    paths = write_report(result, folder, folder)
    assert "paired PSNR (dB)" in paths["markdown"].read_text()
    assert Image.open(folder / "evaluation_files" / "AtoB_background_psnr_best_0.png").size[1] == 96


def test_leaderboard_groups_runs_by_model_and_shows_key_images(runs, tmp_path):
    import shutil

    from evaluation.leaderboard import mean_and_spread, write_leaderboard

    # A second "seed" of aggan: the same results under another folder.
    second = tmp_path / "aggan_s1"
    shutil.copytree(runs["results"]["aggan"], second)
    metrics = json.loads((second / "metrics.json").read_text())
    metrics["meta"]["run"]["name"] = "aggan_s1"
    background = metrics["directions"]["AtoB"]["background"]
    first_psnr = background["psnr_mean"]
    background["psnr_mean"] = first_psnr + 2.0
    (second / "metrics.json").write_text(json.dumps(metrics))
    folders = [runs["results"]["cycle_gan"], runs["results"]["aggan"], second]
    paths = write_leaderboard(folders, tmp_path / "board", group_by_model=True, key_images=2)
    text = paths["markdown"].read_text()
    assert "## Per model" in text and "## Per run" in text and "## Key images" in text
    row = next(line for line in text.splitlines() if line.startswith("| aggan | 2 |"))
    assert f"{first_psnr + 1.0:.3f} ± 1.000" in row  # mean and half the range of the two runs
    strip = tmp_path / "board" / "leaderboard_files" / "keys_aggan.png"
    from PIL import Image

    with Image.open(strip) as image:
        assert image.size == (4 * 96, 2 * 96)  # input, translation, attention, mask; two images
    assert "keys_aggan.png" in paths["html"].read_text()
    assert mean_and_spread([1.0, None, 3.0]) == (2.0, 1.0) and mean_and_spread([None]) == (None, None)
