"""Dataset modes, masks that follow their images, image modes, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data import create_dataloader, create_dataset
from options import parse_train_options
from tests.conftest import make_unaligned, run_script, write_image
from util.errors import UserError


def options(root: Path, *extra: str):
    return parse_train_options(
        ["--dataroot", str(root), "--gpu_ids", "-1", "--num_threads", "0", "--load_size", "36", "--crop_size", "32", *extra]
    )


def bright(image: torch.Tensor) -> torch.Tensor:
    """Pixels of the white square the tiny datasets paint where the mask is."""
    return (image > 0.6).all(0)


def test_unaligned_sample_fields_and_mask_follows_crop_and_flip(tiny_unaligned):
    dataset = create_dataset(options(tiny_unaligned))
    assert len(dataset) == 4  # max(len A, len B)
    for epoch in range(1, 4):
        for index in range(len(dataset)):
            sample = dataset[(epoch, index)]
            assert sample["A"].shape == (3, 32, 32) and sample["A_mask"].shape == (1, 32, 32)
            assert sample["A"].min() >= -1 and sample["A"].max() <= 1
            assert sample["A_has_mask"] and sample["B_has_mask"]
            for side in "AB":
                mask = sample[f"{side}_mask"][0] > 0.5
                # Bicubic resampling blurs the square's rim; its interior and its outside must agree.
                agreement = (mask == bright(sample[side])).float().mean()
                assert agreement > 0.9, (side, epoch, index, float(agreement))
            assert set(np.unique(sample["A_mask"].numpy())) <= {0.0, 1.0}


def test_samples_are_a_function_of_seed_epoch_and_index(tiny_unaligned):
    dataset = create_dataset(options(tiny_unaligned))
    first, again = dataset[(2, 1)], dataset[(2, 1)]
    assert torch.equal(first["A"], again["A"]) and first["B_paths"] == again["B_paths"]
    crops = {tuple(dataset[(epoch, 1)]["A"].flatten()[:50].tolist()) for epoch in range(1, 8)}
    assert len(crops) > 1  # different epochs draw different crops / flips


def test_serial_batches_pairs_in_order(tiny_unaligned):
    dataset = create_dataset(options(tiny_unaligned, "--serial_batches"))
    names = [(Path(dataset[i]["A_paths"]).name, Path(dataset[i]["B_paths"]).name) for i in range(4)]
    assert names == [("im 0.png", "im 0.png"), ("im 1.png", "im 1.png"), ("im 2.png", "im 2.png"), ("im 3.png", "im 0.png")]


def test_direction_btoa_swaps_domains(tiny_unaligned):
    dataset = create_dataset(options(tiny_unaligned, "--direction", "BtoA", "--serial_batches"))
    assert "trainB" in dataset[0]["A_paths"] and "trainA" in dataset[0]["B_paths"]


def test_images_without_masks_get_a_flag_not_a_crash(tmp_path):
    root = make_unaligned(tmp_path / "d", masks=False)
    (root / "trainA_mask").mkdir()
    Image.fromarray(np.full((36, 40), 255, np.uint8)).save(root / "trainA_mask" / "im 0.png")
    dataset = create_dataset(options(root, "--serial_batches"))
    assert dataset[0]["A_has_mask"] and not dataset[1]["A_has_mask"] and not dataset[0]["B_has_mask"]
    assert dataset[1]["A_mask"].sum() == 0
    batch = next(iter(create_dataloader(dataset, options(root, "--batch_size", "2"))))
    assert batch["A"].shape == (2, 3, 32, 32) and batch["A_has_mask"].dtype == torch.bool


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "LA"])
def test_image_modes_become_rgb(tmp_path, mode):
    root = make_unaligned(tmp_path / "d", masks=False)
    path = root / "trainA" / "im 0.png"
    array = np.asarray(Image.open(path))
    if mode == "I;16":
        Image.fromarray(array[..., 0].astype(np.uint16) * 257).save(path)
    elif mode == "CMYK":
        path.unlink()
        Image.fromarray(array).convert("CMYK").save(path.with_suffix(".jpg"))
    else:
        Image.fromarray(array).convert(mode).save(path)
    dataset = create_dataset(options(root, "--serial_batches"))
    sample = dataset[0]
    assert sample["A"].shape == (3, 32, 32)


def test_aligned_mode_splits_pairs_and_shares_one_transform(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        half = rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)
        write_image(tmp_path / "train" / f"{i}.png", np.concatenate([half, 255 - half], axis=1))
        mask = np.zeros((36, 40), np.uint8)
        mask[5:20, 3:17] = 255
        write_image(tmp_path / "train_mask" / f"{i}.png", mask)
    dataset = create_dataset(options(tmp_path, "--dataset_mode", "aligned"))
    for epoch in range(1, 4):
        sample = dataset[(epoch, 0)]
        # B = 255 - A before resampling, so in [-1, 1] the two halves are close to negatives.
        assert torch.allclose(sample["A"], -sample["B"], atol=0.05)
        assert torch.equal(sample["A_mask"], sample["B_mask"]) and sample["A_has_mask"]


def test_single_mode_reads_one_folder_with_sibling_masks(tiny_unaligned):
    opt = options(tiny_unaligned / "trainA", "--dataset_mode", "single")
    dataset = create_dataset(opt)
    assert len(dataset) == 4 and dataset[0]["A_has_mask"] and "B" not in dataset[0]


def test_file_names_with_spaces_work(tiny_unaligned):
    assert " " in Path(create_dataset(options(tiny_unaligned))[0]["A_paths"]).name


def test_max_dataset_size(tiny_unaligned):
    assert len(create_dataset(options(tiny_unaligned, "--max_dataset_size", "2"))) == 2


def test_missing_dataroot_names_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        create_dataset(options(tmp_path / "nowhere"))


def test_wrong_layout_names_the_missing_folder_and_the_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError) as err:
        create_dataset(options(tmp_path))
    message = str(err.value)
    assert "trainA" in message and "Expected layout" in message and "images" in message


def test_empty_folder_is_an_error_naming_it(tmp_path):
    root = make_unaligned(tmp_path / "d")
    for path in (root / "trainB").iterdir():
        path.unlink()
    with pytest.raises(UserError, match="trainB"):
        create_dataset(options(root))


def test_unreadable_image_names_the_file_when_the_dataset_is_built(tmp_path):
    root = make_unaligned(tmp_path / "d")
    (root / "trainA" / "im 0.png").write_bytes(b"this is not a png")
    with pytest.raises(UserError, match="im 0.png"):
        create_dataset(options(root, "--serial_batches"))


def test_aligned_image_too_narrow_is_explained(tmp_path):
    write_image(tmp_path / "train" / "0.png", np.zeros((8, 1, 3), np.uint8))
    with pytest.raises(UserError, match="side by side"):
        create_dataset(options(tmp_path, "--dataset_mode", "aligned"))[0]


def test_crop_larger_than_image_is_explained(tiny_unaligned):
    with pytest.raises(UserError, match="--crop_size 32 is larger than --load_size 30"):
        parse_train_options(["--dataroot", str(tiny_unaligned), "--load_size", "30", "--crop_size", "32"])


def test_train_script_reports_bad_data_without_traceback(tmp_path):
    root = make_unaligned(tmp_path / "d")
    (root / "trainA" / "im 1.png").write_bytes(b"garbage")
    result = run_script("train.py",
            "--dataroot",
            str(root),
            "--checkpoints_dir",
            str(tmp_path / "c"),
            "--gpu_ids",
            "-1",
            "--num_threads",
            "1",
            "--serial_batches",
            "--display_id",
            "0",
            "--ngf",
            "4",
            "--ndf",
            "4",
            "--load_size",
            "36",
            "--crop_size",
            "32",
            "--no_progress")
    assert result.returncode == 2
    assert "im 1.png" in result.stderr and "Traceback" not in result.stderr
