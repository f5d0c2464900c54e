"""Tests of the synthetic benchmark generator (data/synthetic.py) and its CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import synthetic
from data.synthetic import (
    empty_indices,
    ensure_synthetic_dataset,
    image_rng,
    make_synthetic_dataset,
    render_paired_scene,
    render_scene,
    render_scene_layers,
)
from tests.conftest import run_script

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "make_synthetic_dataset.py"
SMALL = {"size": 32, "n_train": 6, "n_test": 3, "progress": False}
UNALIGNED_FOLDERS = ["testA", "testB", "trainA", "trainB"]


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def all_files(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small") / "synthetic"
    return make_synthetic_dataset(root, seed=3, workers=2, **SMALL)


# --------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["A", "B"])
def test_render_scene_types_and_nonempty_mask(domain: str) -> None:
    for index in range(10):
        image, mask = render_scene(image_rng(0, "train", domain, index), 48, domain)
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and mask.dtype == bool
        assert mask.any(), "a scene with objects must have a non-empty mask"


@pytest.mark.parametrize("size", [16, 17, 40])
def test_smallest_sizes_still_show_every_object(size: int) -> None:
    for index in range(30):
        _, mask = render_scene(np.random.default_rng([1, index]), size, "B", n_objects=3)
        assert mask.any()


@pytest.mark.parametrize("domain", ["A", "B"])
def test_image_is_background_outside_mask_and_objects_inside(domain: str) -> None:
    for index in range(20):
        layers = render_scene_layers(image_rng(1, "test", domain, index), 64, domain)
        mask = layers.mask
        assert mask.any() and not mask.all()
        np.testing.assert_array_equal(layers.image[~mask], layers.background[~mask])
        np.testing.assert_array_equal(layers.image[mask], layers.foreground[mask])
        # The layers differ under the objects, so the checks above are not vacuous.
        assert np.any(layers.background[mask] != layers.foreground[mask])


def test_render_is_deterministic_for_equal_generator_state() -> None:
    first = render_scene_layers(image_rng(7, "train", "B", 5), 32, "B")
    second = render_scene_layers(image_rng(7, "train", "B", 5), 32, "B")
    other = render_scene_layers(image_rng(7, "train", "B", 6), 32, "B")
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.mask, second.mask)
    assert not np.array_equal(first.image, other.image)


def test_zero_objects_gives_empty_mask_and_pure_background() -> None:
    layers = render_scene_layers(np.random.default_rng(0), 32, "A", n_objects=0)
    assert not layers.mask.any()
    np.testing.assert_array_equal(layers.image, layers.background)


def test_domain_b_objects_are_striped_and_domain_a_objects_plain() -> None:
    for index in range(40):
        plain = render_scene_layers(np.random.default_rng([2, index]), 64, "A", n_objects=1)
        striped = render_scene_layers(np.random.default_rng([2, index]), 64, "B", n_objects=1)
        plain_lum = luminance(plain.image)[plain.mask]
        striped_lum = luminance(striped.image)[striped.mask]
        assert plain_lum.std() < 40, "domain A objects are plain, only shaded"
        assert striped_lum.std() > 70, "domain B objects carry black-and-white stripes"
        # Stripes are bimodal: both a dark and a bright population are present.
        assert np.mean(striped_lum < 70) > 0.15 and np.mean(striped_lum > 130) > 0.15


def test_backgrounds_greener_in_a_than_b_but_overlapping() -> None:
    def greenness(domain: str) -> np.ndarray:
        values = []
        for index in range(100):
            background = render_scene_layers(image_rng(0, "train", domain, index), 32, domain).background
            mean_rgb = background.reshape(-1, 3).astype(np.float64).mean(axis=0)
            values.append(mean_rgb[1] - mean_rgb[0])
        return np.array(values)

    green_a, green_b = greenness("A"), greenness("B")
    assert green_a.mean() > green_b.mean() + 15
    # Overlap: some B backgrounds are greener than many A backgrounds and vice versa.
    assert np.mean(green_b > np.percentile(green_a, 25)) >= 0.05
    assert np.mean(green_a < np.percentile(green_b, 75)) >= 0.05


def test_paired_scene_shares_geometry_but_not_appearance() -> None:
    for index in range(20):
        scene_a, scene_b = render_paired_scene(np.random.default_rng([4, index]), 64, n_objects=1)
        np.testing.assert_array_equal(scene_a.mask, scene_b.mask)
        mask = scene_a.mask
        assert luminance(scene_a.image)[mask].std() < 40
        assert luminance(scene_b.image)[mask].std() > 70
        assert np.any(scene_a.background != scene_b.background), "background palettes differ"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"size": 15, "domain": "A"}, "size"), ({"size": 32, "domain": "C"}, "domain")],
)
def test_render_scene_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_scene(np.random.default_rng(0), **kwargs)


# --------------------------------------------------------------------------
# Dataset files
# --------------------------------------------------------------------------


def test_unaligned_layout_and_counts(small_dataset: Path) -> None:
    expected = {"testA": 3, "testB": 3, "trainA": 6, "trainB": 6}
    folders = sorted(p.name for p in small_dataset.iterdir() if p.is_dir())
    assert folders == sorted([*expected, *(f"{name}_mask" for name in expected)])
    for folder, count in expected.items():
        names = [f"{i:05d}.png" for i in range(count)]
        assert sorted(p.name for p in (small_dataset / folder).iterdir()) == names
        assert sorted(p.name for p in (small_dataset / f"{folder}_mask").iterdir()) == names
        for name in names:
            with Image.open(small_dataset / folder / name) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
            with Image.open(small_dataset / f"{folder}_mask" / name) as mask:
                assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (32, 32))
    metadata = json.loads((small_dataset / "synthetic.json").read_text())
    assert metadata["size"] == 32 and metadata["n_train"] == 6 and metadata["n_test"] == 3
    assert metadata["seed"] == 3 and metadata["aligned"] is False
    assert metadata["version"] == synthetic.GENERATOR_VERSION


def test_written_files_are_the_rendered_scenes_with_exact_masks(small_dataset: Path) -> None:
    for folder in UNALIGNED_FOLDERS:
        split, domain = folder[:-1], folder[-1]
        empties = empty_indices(3, split, domain, len(list((small_dataset / folder).iterdir())), 0.03)
        for path in sorted((small_dataset / folder).iterdir()):
            index = int(path.stem)
            n_objects = 0 if index in empties else None
            layers = render_scene_layers(image_rng(3, split, domain, index), 32, domain, n_objects=n_objects)
            mask_png = read_png(small_dataset / f"{folder}_mask" / path.name)
            assert set(np.unique(mask_png)) <= {0, 255}
            np.testing.assert_array_equal(mask_png == 255, layers.mask)
            image = read_png(path)
            np.testing.assert_array_equal(image, layers.image)
            np.testing.assert_array_equal(image[mask_png == 0], layers.background[mask_png == 0])


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tmp_path: Path, small_dataset: Path) -> None:
    single = make_synthetic_dataset(tmp_path / "single", seed=3, workers=1, **SMALL)
    assert all_files(single) == all_files(small_dataset)  # the fixture used 2 workers


def test_different_seed_gives_different_images(tmp_path: Path, small_dataset: Path) -> None:
    other = all_files(make_synthetic_dataset(tmp_path / "other", seed=4, workers=1, **SMALL))
    reference = all_files(small_dataset)
    assert other.keys() == reference.keys()
    changed = [name for name in reference if name.endswith(".png") and reference[name] != other[name]]
    assert len(changed) == sum(name.endswith(".png") for name in reference)


def test_empty_fraction_one_gives_only_empty_masks(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "empty", empty_fraction=1.0, workers=1, **SMALL)
    for folder in UNALIGNED_FOLDERS:
        for path in (root / f"{folder}_mask").iterdir():
            assert not read_png(path).any()


def test_empty_fraction_zero_gives_no_empty_masks(small_dataset: Path, tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "full", empty_fraction=0.0, workers=1, **SMALL)
    for folder in UNALIGNED_FOLDERS:
        for path in (root / f"{folder}_mask").iterdir():
            assert read_png(path).any()


def test_empty_fraction_is_exact_per_split_and_domain(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "half", empty_fraction=0.5, workers=1, **SMALL)
    for folder, count in {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2}.items():
        masks = [read_png(path) for path in (root / f"{folder}_mask").iterdir()]
        assert sum(not mask.any() for mask in masks) == count  # round(0.5 * 6), round(0.5 * 3)


def test_aligned_layout(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "pairs", aligned=True, seed=5, workers=2, **{**SMALL, "size": 48})
    assert sorted(p.name for p in root.iterdir()) == ["synthetic.json", "test", "test_mask", "train", "train_mask"]
    assert len(list((root / "train").iterdir())) == 6 and len(list((root / "test_mask").iterdir())) == 3
    for split in ("train", "test"):
        for path in sorted((root / split).iterdir()):
            pair = read_png(path)
            mask = read_png(root / f"{split}_mask" / path.name) == 255
            assert pair.shape == (48, 96, 3) and mask.shape == (48, 48)
            scene_a, scene_b = render_paired_scene(image_rng(5, split, "AB", int(path.stem)), 48)
            np.testing.assert_array_equal(pair[:, :48], scene_a.image)
            np.testing.assert_array_equal(pair[:, 48:], scene_b.image)
            np.testing.assert_array_equal(mask, scene_a.mask)
            np.testing.assert_array_equal(mask, scene_b.mask)
            if mask.sum() >= 30:
                assert luminance(pair[:, :48])[mask].std() < 40, "A half's objects are not striped"
                assert luminance(pair[:, 48:])[mask].std() > 70, "B half's objects are striped"


def test_interrupted_run_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    render_task = synthetic.writing._render_task

    def failing_render_task(task: object) -> None:
        calls.append(task)
        if len(calls) == 5:
            raise KeyboardInterrupt
        render_task(task)

    monkeypatch.setattr(synthetic.writing, "_render_task", failing_render_task)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path / "synthetic", workers=1, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_no_temporary_folders_are_left(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path / "synthetic", workers=2, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


@pytest.mark.parametrize(
    "kwargs",
    [{"size": 8}, {"n_train": -1}, {"n_test": -2}, {"empty_fraction": 1.5}, {"seed": -1}, {"workers": 0}],
)
def test_make_rejects_bad_values(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_synthetic_dataset(tmp_path / "bad", **{**SMALL, **kwargs})
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------
# Reuse and refusal
# --------------------------------------------------------------------------


def test_ensure_generates_then_reuses(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    assert ensure_synthetic_dataset(root, workers=1, **SMALL) == root
    sentinel = root / "sentinel.txt"
    sentinel.write_text("regeneration would remove me")
    before = all_files(root)
    assert ensure_synthetic_dataset(root, workers=2, **SMALL) == root  # workers do not change content
    assert all_files(root) == before


def test_ensure_regenerates_an_incomplete_synthetic_dataset(tmp_path: Path) -> None:
    root = ensure_synthetic_dataset(tmp_path / "synthetic", workers=1, **SMALL)
    complete = all_files(root)
    (root / "trainB" / "00004.png").unlink()
    ensure_synthetic_dataset(root, workers=1, **SMALL)
    assert all_files(root) == complete


def test_ensure_accepts_an_existing_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    root.mkdir()
    ensure_synthetic_dataset(root, workers=1, **SMALL)
    assert (root / "synthetic.json").is_file()


def test_ensure_refuses_different_parameters_and_keeps_the_data(tmp_path: Path) -> None:
    root = ensure_synthetic_dataset(tmp_path / "synthetic", workers=1, **SMALL)
    before = all_files(root)
    with pytest.raises(ValueError, match="different parameters.*seed"):
        ensure_synthetic_dataset(root, workers=1, **{**SMALL, "seed": 9})
    with pytest.raises(ValueError, match="aligned"):
        ensure_synthetic_dataset(root, workers=1, aligned=True, **SMALL)
    assert all_files(root) == before


def test_ensure_refuses_a_foreign_folder_and_keeps_it(tmp_path: Path) -> None:
    root = tmp_path / "my_photos"
    (root / "trainA").mkdir(parents=True)
    (root / "trainA" / "horse.png").write_bytes(b"precious")
    with pytest.raises(ValueError, match="not a synthetic dataset"):
        ensure_synthetic_dataset(root, **SMALL)
    with pytest.raises(ValueError, match="not a synthetic dataset"):
        make_synthetic_dataset(root, overwrite=True, **SMALL)
    assert (root / "trainA" / "horse.png").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_photos"]


def test_make_needs_overwrite_to_replace_a_synthetic_dataset(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "synthetic", workers=1, **SMALL)
    with pytest.raises(FileExistsError):
        make_synthetic_dataset(root, workers=1, **SMALL)
    make_synthetic_dataset(root, overwrite=True, workers=1, **{**SMALL, "n_train": 2})
    assert len(list((root / "trainA").iterdir())) == 2
    assert json.loads((root / "synthetic.json").read_text())["n_train"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def load_cli():
    """Import the script as a module (it is not inside a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--size", "15"], "--size"),
        (["--n_train", "-1"], "--n_train"),
        (["--n_test", "-5"], "--n_test"),
        (["--empty_fraction", "1.01"], "--empty_fraction"),
        (["--empty_fraction", "-0.1"], "--empty_fraction"),
        (["--size", "big"], "--size"),
    ],
)
def test_cli_bad_value_exits_2_naming_the_option(
    argv: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = load_cli()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_reexports_the_library_function() -> None:
    assert load_cli().make_synthetic_dataset is make_synthetic_dataset


def test_cli_runs_as_a_script_from_another_directory(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [SCRIPT, "--out", out, "--size", "16", "--n_train", "2", "--n_test", "1"]
    result = run_script(*args, "--quiet", cwd=tmp_path, process=True)  # a real process: its imports must resolve
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert len(list((out / "trainB_mask").iterdir())) == 2

    # Without --force a mismatch is refused; with --force it is regenerated.
    mismatch = run_script(*args, "--seed", "1", cwd=tmp_path)
    assert mismatch.returncode == 1 and "--force" in mismatch.stderr
    forced = run_script(*args, "--seed", "1", "--force", "--quiet", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "synthetic.json").read_text())["seed"] == 1


def test_distinct_backgrounds_separate_the_domains_by_brightness():
    from data.synthetic import image_rng, render_scene_layers

    def background_value(domain: str, index: int) -> float:
        layers = render_scene_layers(image_rng(0, "train", domain, index), 48, domain, n_objects=0, backgrounds="distinct")
        return float(layers.background.mean())

    a = [background_value("A", i) for i in range(12)]
    b = [background_value("B", i) for i in range(12)]
    assert max(a) < min(b)  # dark meadows vs pale savanna: the background alone tells the domain
    overlapping = [render_scene_layers(image_rng(0, "train", "A", i), 48, "A", n_objects=0).background.mean() for i in range(3)]
    assert overlapping != a[:3]  # the default palettes are unchanged and different


def test_multidomain_layout_has_exact_masks_per_domain(tmp_path):
    from data.synthetic import LOOKS, ensure_synthetic_dataset, make_synthetic_dataset

    root = make_synthetic_dataset(tmp_path / "md", size=32, n_train=3, n_test=2, domains=3, workers=1, progress=False)
    for split, count in (("train", 3), ("test", 2)):
        for look in LOOKS[:3]:
            images = sorted((root / split / look).glob("*.png"))
            masks = sorted((root / split / f"{look}_mask").glob("*.png"))
            assert len(images) == len(masks) == count
    assert not (root / "train" / "checked").exists()
    assert json.loads((root / "synthetic.json").read_text())["domains"] == 3
    assert ensure_synthetic_dataset(root, size=32, n_train=3, n_test=2, domains=3) == root
    with pytest.raises(ValueError, match="domains: found 3, wanted 4"):
        ensure_synthetic_dataset(root, size=32, n_train=3, n_test=2, domains=4)
    with pytest.raises(ValueError, match="domains must be 0 or 2..4"):
        make_synthetic_dataset(tmp_path / "x", size=32, n_train=1, n_test=1, domains=5)
