"""The dataset modes a model can ask for by name: ``unaligned``, ``aligned`` and ``single``.

Every sample is a dict. ``A``/``B`` are ``C x H x W`` tensors in [-1, 1]; ``A_paths``/
``B_paths`` the source files and ``A_index``/``B_index`` their positions in the dataset's
file lists (models that keep per-image state key it by these); ``A_mask``/``B_mask`` are
``1 x H x W`` 0/1 tensors with ``A_has_mask``/``B_has_mask`` telling whether a ground-truth
mask exists (all zeros and False otherwise); ``A_geometry``/``B_geometry`` say where the
sample's pixels lie in its resized image (:meth:`data.transforms.GeometryParams.as_tensor`). With
``--mask_replay`` an unaligned training sample also carries, per side that has masks,
``A_replay``/``A_replay_mask``: an image drawn among those whose mask is used, with its mask
(:meth:`UnalignedDataset.replayed`). Masks live in a sibling folder
``<folder>_mask/`` with the same relative file stem (0 background, non-zero object; see
``data/image_folder.py``). Every file's header is checked when the dataset is built.

Randomness: a sample is a pure function of ``(seed, epoch, index)``. The training
sampler passes ``(epoch, index)`` keys, and each sample draws its crop, flip and (for
unaligned data) its B partner from a generator seeded with that key, so results do not
depend on the number of loader workers and a resumed run sees the same data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from data.image_folder import list_images, load_mask, load_rgb, scan_images
from data.transforms import apply_geometry, image_to_tensor, jitter_object, mask_to_tensor, sample_geometry
from util import distributed
from util.errors import UserError

_DATASETS: dict[str, type[Dataset]] = {}


def register_dataset(name: str) -> Callable[[type], type]:
    """Class decorator that makes ``--dataset_mode name`` select the class."""

    def decorate(cls: type) -> type:
        _DATASETS[name] = cls
        return cls

    return decorate


def available_datasets() -> list[str]:
    return sorted(_DATASETS)


def create_dataset(opt: argparse.Namespace) -> Dataset:
    """Build the dataset named by ``--dataset_mode`` over ``--dataroot``."""
    if opt.dataset_mode not in _DATASETS:
        raise UserError(f"unknown --dataset_mode {opt.dataset_mode!r}; known: {', '.join(available_datasets())}")
    root = Path(opt.dataroot)
    if not root.is_dir():
        raise UserError(f"--dataroot {root} does not exist or is not a folder")
    return _DATASETS[opt.dataset_mode](opt)


def mask_folder(image_folder: Path) -> Path | None:
    """``<folder>_mask`` beside ``<folder>`` if it exists."""
    candidate = image_folder.with_name(image_folder.name + "_mask")
    return candidate if candidate.is_dir() else None


# Second seed component of the stream that picks the training masks (far from the sample streams).
MASK_SUBSET_STREAM = 104729


def mask_subset(paths: list[Path], masks: dict[Path, Path], opt: argparse.Namespace, stream: int) -> dict[Path, Path]:
    """The masks a training run may use: ``--mask_fraction F`` of the images (rounded, at least one
    when F > 0) and at most ``--max_masks N``, drawn among the images that have a mask file by a
    generator seeded with ``(--seed, stream)``: the same subset for the same data and seed, so a
    resumed run uses the same masks. Without these options every mask is kept."""
    fraction, limit = getattr(opt, "mask_fraction", 1.0), getattr(opt, "max_masks", -1)
    if fraction >= 1.0 and limit < 0:
        return masks
    wanted = len(paths) if fraction >= 1.0 else (max(1, round(fraction * len(paths))) if fraction > 0 else 0)
    if limit >= 0:
        wanted = min(wanted, limit)
    candidates = [path for path in paths if path in masks]
    if wanted >= len(candidates):
        return masks
    rng = np.random.default_rng([opt.seed, MASK_SUBSET_STREAM, stream])
    chosen = sorted(rng.choice(len(candidates), size=wanted, replace=False))
    return {candidates[i]: masks[candidates[i]] for i in chosen}


def smallest_side(opt: argparse.Namespace) -> int:
    """Images smaller than this are upscaled by the preprocessing (worth a warning)."""
    return opt.crop_size if "crop" in opt.preprocess else 1


class _Sample:
    """Loads one image (and its mask, if any) with a shared geometric transform."""

    def __init__(self, folder: Path, paths: list[Path], channels: int, opt: argparse.Namespace) -> None:
        self.folder, self.paths, self.channels = folder, paths, channels
        self.masks = scan_images(paths, folder, mask_folder(folder), smallest_side(opt)).masks

    def masked_indices(self) -> list[int]:
        """Positions of the images whose mask is used (after ``--mask_fraction``/``--max_masks``)."""
        return [i for i, path in enumerate(self.paths) if path in self.masks]

    def load(self, index: int, opt: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
        """The image, its mask (zeros when absent), whether it has one, its path and its geometry."""
        path = self.paths[index]
        image = load_rgb(path)
        original_size = image.size
        params = sample_geometry(opt, original_size, rng)
        image = apply_geometry(image, params)
        mask_path = self.masks.get(path)
        mask = None
        if mask_path is not None:
            mask = apply_geometry(load_mask(mask_path, original_size, path), params, is_mask=True)
        return {
            "": image_to_tensor(image, self.channels),
            "_mask": mask_to_tensor(mask, image.size),
            "_has_mask": mask is not None,
            "_paths": str(path),
            "_geometry": params.as_tensor(),
        }


def _split_key(key: int | tuple[int, int]) -> tuple[int, int]:
    return key if isinstance(key, tuple) else (0, int(key))


class _BaseDataset(Dataset):
    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.root = Path(opt.dataroot)

    def rng(self, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.opt.seed, epoch, index, stream])


@register_dataset("unaligned")
class UnalignedDataset(_BaseDataset):
    """Two unpaired folders ``<phase>A/`` and ``<phase>B/``; length = the larger one.

    Item ``i`` pairs the ``i``-th A image (cycled) with a random B image, or the
    ``i``-th B image (cycled) under ``--serial_batches``. ``--direction BtoA`` swaps roles.
    """

    layout = "DATAROOT/{phase}A/*.jpg and DATAROOT/{phase}B/*.jpg (optional masks in {phase}A_mask/, {phase}B_mask/)"

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        hint = self.layout.format(phase=opt.phase)
        folders = {side: self.root / f"{opt.phase}{side}" for side in "AB"}
        missing = [str(f) for f in folders.values() if not f.is_dir()]
        if missing:
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise UserError(
                f"missing folder(s) {', '.join(missing)} under --dataroot {self.root} "
                f"(found: {found or 'nothing'}).\nExpected layout: {hint}"
            )
        if opt.direction == "BtoA":
            folders = {"A": folders["B"], "B": folders["A"]}
        self.sides = {
            side: _Sample(
                folder, list_images(folder, opt.max_dataset_size, hint), opt.input_nc if side == "A" else opt.output_nc, opt
            )
            for side, folder in folders.items()
        }
        if getattr(opt, "isTrain", False):
            self.limit_masks()

    def limit_masks(self) -> None:
        """Keep the ``--mask_fraction`` / ``--max_masks`` subset of the training masks; say how many,
        in the log and (``opt.masks_used``) in train_opt.txt."""
        counts = {}
        for stream, (side, sample) in enumerate(self.sides.items()):
            available = len(sample.masks)
            sample.masks = mask_subset(sample.paths, sample.masks, self.opt, stream)
            counts[side] = (f"{len(sample.masks)} of {len(sample.paths)} {sample.folder.name} images "
                            f"({available} have a mask file)")
        self.opt.masks_used = "; ".join(f"{side}: {text}" for side, text in counts.items())
        if getattr(self.opt, "attention_prior", "none") == "masks" and distributed.context().is_main:
            print(f"masks used for training: {self.opt.masks_used}")

    def __len__(self) -> int:
        return max(len(s.paths) for s in self.sides.values())

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = _split_key(key)
        side_a, side_b = self.sides["A"], self.sides["B"]
        index_a = index % len(side_a.paths)
        if self.opt.serial_batches:
            index_b = index % len(side_b.paths)
        else:
            index_b = int(self.rng(epoch, index, 1).integers(len(side_b.paths)))
        sample: dict[str, Any] = {}
        for side, (source, idx, stream) in {"A": (side_a, index_a, 2), "B": (side_b, index_b, 3)}.items():
            fields = source.load(idx, self.opt, self.rng(epoch, index, stream))
            sample.update({side + key: value for key, value in fields.items()})
            sample[f"{side}_index"] = idx
            if getattr(self.opt, "mask_replay", False) and source.masks:
                sample.update(self.replayed(side, source, epoch, index, stream + 2))
        return sample

    def replayed(self, side: str, source: _Sample, epoch: int, index: int, stream: int) -> dict[str, torch.Tensor]:
        """``--mask_replay``: one image of ``side`` that has a mask (drawn by the sample's key), with its
        own crop and flip (and with ``--replay_jitter`` its object recoloured, :func:`jitter_object`):
        ``<side>_replay`` and ``<side>_replay_mask``."""
        rng = self.rng(epoch, index, stream)
        masked = source.masked_indices()
        fields = source.load(masked[int(rng.integers(len(masked)))], self.opt, rng)
        image = jitter_object(fields[""], fields["_mask"], getattr(self.opt, "replay_jitter", 0.0), rng)
        return {f"{side}_replay": image, f"{side}_replay_mask": fields["_mask"]}


@register_dataset("aligned")
class AlignedDataset(_BaseDataset):
    """Paired images ``<phase>/*.jpg``, each ``A|B`` side by side; both halves share one transform.

    Masks in ``<phase>_mask/``: one mask per pair (as wide as one half) used for both
    sides, or a side-by-side mask as wide as the pair.
    """

    layout = "DATAROOT/{phase}/*.jpg, each image holding A (left) and B (right) side by side"

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.folder = self.root / opt.phase
        self.paths = list_images(self.folder, opt.max_dataset_size, self.layout.format(phase=opt.phase))
        # A pair mask may cover both halves or one (then it is as wide as half the pair).
        self.masks = scan_images(self.paths, self.folder, mask_folder(self.folder), 1, pairs=True).masks

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = _split_key(key)
        path = self.paths[index]
        pair = load_rgb(path)
        w, h = pair.size
        if w < 2:
            raise UserError(
                f"{path} is {w}x{h}; aligned data needs A and B side by side. "
                f"Expected layout: {self.layout.format(phase=self.opt.phase)}"
            )
        halves = {"A": pair.crop((0, 0, w // 2, h)), "B": pair.crop((w // 2, 0, 2 * (w // 2), h))}
        if self.opt.direction == "BtoA":
            halves = {"A": halves["B"], "B": halves["A"]}
        params = sample_geometry(self.opt, halves["A"].size, self.rng(epoch, index))
        masks = self._masks(path, (w, h), halves["A"].size)
        sample: dict[str, Any] = {}
        for side, half in halves.items():
            image = apply_geometry(half, params)
            mask = None if masks[side] is None else apply_geometry(masks[side], params, is_mask=True)
            channels = self.opt.input_nc if side == "A" else self.opt.output_nc
            sample.update(
                {
                    side: image_to_tensor(image, channels),
                    f"{side}_mask": mask_to_tensor(mask, image.size),
                    f"{side}_has_mask": mask is not None,
                    f"{side}_paths": str(path),
                    f"{side}_index": index,
                    f"{side}_geometry": params.as_tensor(),
                }
            )
        return sample

    def _masks(self, path: Path, pair_size: tuple[int, int], half_size: tuple[int, int]) -> dict[str, Any]:
        mask_path = self.masks.get(path)
        if mask_path is None:
            return {"A": None, "B": None}
        with Image.open(mask_path) as header:
            width = header.size[0]
        if width == pair_size[0] and width != half_size[0]:
            full = load_mask(mask_path, pair_size, path)
            w = pair_size[0] // 2
            left, right = full.crop((0, 0, w, pair_size[1])), full.crop((w, 0, 2 * w, pair_size[1]))
            return {"A": left, "B": right} if self.opt.direction == "AtoB" else {"A": right, "B": left}
        shared = load_mask(mask_path, half_size, path)
        return {"A": shared, "B": shared}


@register_dataset("single")
class SingleDataset(_BaseDataset):
    """One folder of images (``--dataroot`` itself), returned as ``A``; masks in ``<dataroot>_mask/``."""

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        channels = opt.output_nc if opt.direction == "BtoA" else opt.input_nc
        self.source = _Sample(self.root, list_images(self.root, opt.max_dataset_size, "DATAROOT/*.jpg"), channels, opt)

    def __len__(self) -> int:
        return len(self.source.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = _split_key(key)
        fields = self.source.load(index, self.opt, self.rng(epoch, index))
        return {**{"A" + key: value for key, value in fields.items()}, "A_index": index}


@register_dataset("multidomain")
class MultiDomainDataset(_BaseDataset):
    """k domains in ``<phase>/<domain>/`` (masks in ``<phase>/<domain>_mask/``), for multi-domain models.

    Domains are the folder names, sorted; item ``i`` is the ``i``-th image of all domains in that
    order, returned as ``A`` with ``A_domain`` (its domain's index) and ``target_domain``, a
    different domain drawn from ``(seed, epoch, index)``. The domain names are written to
    ``opt.domain_names`` for the model.
    """

    layout = "DATAROOT/{phase}/<domain>/*.jpg for two or more domains (optional masks in {phase}/<domain>_mask/)"

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        folder = self.root / opt.phase
        hint = self.layout.format(phase=opt.phase)
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith("_mask")) if folder.is_dir() else []
        if len(names) < 2:
            raise UserError(f"{folder} holds {len(names)} domain folder(s) ({names or 'none'}); a multi-domain dataset "
                            f"needs at least two.\nExpected layout: {hint}")
        self.domains = names
        self.sources = []
        for name in names:
            paths = list_images(folder / name, opt.max_dataset_size, hint)  # an empty domain is an error naming it
            self.sources.append(_Sample(folder / name, paths, opt.input_nc, opt))
        self.offsets = np.cumsum([0] + [len(s.paths) for s in self.sources])
        trained_on = getattr(opt, "domain_names", None)
        if trained_on and list(trained_on) != names:
            raise UserError(f"{folder} has the domains {names}, but the model knows {list(trained_on)}: "
                            f"a multi-domain model translates between the domains it was trained on")
        opt.domain_names = names

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = _split_key(key)
        domain = int(np.searchsorted(self.offsets, index, side="right") - 1)
        fields = self.sources[domain].load(index - int(self.offsets[domain]), self.opt, self.rng(epoch, index))
        others = [d for d in range(len(self.domains)) if d != domain]
        target = others[int(self.rng(epoch, index, 1).integers(len(others)))]
        return {**{"A" + k: v for k, v in fields.items()}, "A_index": index, "A_domain": domain, "target_domain": target}


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a permutation seeded by (seed, epoch), or in order.

    ``start`` skips the first ``start`` positions of the epoch's order, so training resumed in
    the middle of an epoch continues with exactly the samples that were not yet seen.

    Under ``torchrun`` (``world_size > 1``) the order is the same on every rank and rank ``r``
    takes the positions ``start + r, start + r + world_size, ...``: the ``k``-th batches of all
    ranks together hold the positions a single process with ``world_size`` times the batch size
    would take. The remaining positions are padded to a multiple of ``world_size`` by wrapping
    around to the start of the order (as ``DistributedSampler`` does), so every rank takes the
    same number of steps. Positions are global, so a run can resume with another world size.
    """

    def __init__(
        self, length: int, shuffle: bool, seed: int, epoch: int = 1, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.set_epoch(epoch, start)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over ``epoch`` from position ``start`` next time."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """The epoch's dataset indices, in the order a single process takes them."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            return torch.randperm(self.length, generator=generator).tolist()
        return list(range(self.length))

    def positions(self) -> list[int]:
        """This rank's dataset indices for the rest of the epoch."""
        order = self.order()
        rest = order[self.start :]
        if self.world_size > 1 and rest:
            padding = -len(rest) % self.world_size
            rest = rest + [order[i % len(order)] for i in range(padding)]
            rest = rest[self.rank :: self.world_size]
        return rest

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.positions():
            yield self.epoch, index

    def __len__(self) -> int:
        return -(-max(0, self.length - self.start) // self.world_size)


class EpochLoader:
    """One DataLoader for the whole run: worker processes start once (``persistent_workers``)
    and each epoch re-iterates the same sampler from a new ``(epoch, start)``."""

    def __init__(self, dataset: Dataset, opt: argparse.Namespace, *, rank: int = 0, world_size: int = 1) -> None:
        self.dataset, self.opt = dataset, opt
        self.sampler = EpochSampler(len(dataset), not opt.serial_batches, opt.seed, rank=rank, world_size=world_size)
        # The loader's own generator keeps it from drawing on the global torch RNG, which a
        # resumed run must find exactly as the checkpoint left it.
        generator = torch.Generator().manual_seed(opt.seed * 1_000_003)
        workers = opt.num_threads
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=opt.batch_size,
            sampler=self.sampler,
            generator=generator,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """The batches of ``epoch`` from global position ``start`` on."""
        self.sampler.set_epoch(epoch, start)
        return iter(self.loader)

    def steps(self, start: int = 0) -> int:
        """How many batches each rank takes in an epoch from position ``start``."""
        remaining = max(0, len(self.dataset) - start)
        per_rank = -(-remaining // self.sampler.world_size)
        return -(-per_rank // self.opt.batch_size)


def create_dataloader(
    dataset: Dataset, opt: argparse.Namespace, *, epoch: int = 1, start_batch: int = 0, shuffle: bool | None = None
) -> torch.utils.data.DataLoader:
    """A loader over one epoch of ``dataset`` (single process), starting after ``start_batch`` batches."""
    shuffle = (not opt.serial_batches) if shuffle is None else shuffle
    sampler = EpochSampler(len(dataset), shuffle, opt.seed, epoch, start_batch * opt.batch_size)
    generator = torch.Generator().manual_seed(opt.seed * 1_000_003 + epoch)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=opt.batch_size,
        sampler=sampler,
        generator=generator,
        num_workers=opt.num_threads,
        pin_memory=torch.cuda.is_available(),
    )
