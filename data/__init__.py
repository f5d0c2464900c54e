"""Datasets a model asks for by name (``--dataset_mode``), and the built-in default data."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.datasets import (
    AlignedDataset,
    EpochLoader,
    EpochSampler,
    SingleDataset,
    UnalignedDataset,
    available_datasets,
    create_dataloader,
    create_dataset,
    register_dataset,
)

DEFAULT_DATAROOT = Path("datasets") / "synthetic"
DEFAULT_ALIGNED_DATAROOT = Path("datasets") / "synthetic_aligned"


def resolve_dataroot(opt: argparse.Namespace) -> None:
    """Without ``--dataroot``, use the built-in synthetic dataset, generating it on first use."""
    if opt.dataroot:
        return
    from data.synthetic import ensure_synthetic_dataset

    aligned = opt.dataset_mode == "aligned"
    root = DEFAULT_ALIGNED_DATAROOT if aligned else DEFAULT_DATAROOT
    print(f"no --dataroot given: using the built-in synthetic dataset at {root}")
    ensure_synthetic_dataset(root, aligned=aligned)
    opt.dataroot = str(root / "testA") if opt.dataset_mode == "single" else str(root)


__all__ = [
    "AlignedDataset",
    "EpochLoader",
    "EpochSampler",
    "SingleDataset",
    "UnalignedDataset",
    "available_datasets",
    "create_dataloader",
    "create_dataset",
    "register_dataset",
    "resolve_dataroot",
]
