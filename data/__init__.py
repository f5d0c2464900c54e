"""Datasets a model asks for by name (``--dataset_mode``), and the built-in default data."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.datasets import (
    AlignedDataset,
    EpochLoader,
    EpochSampler,
    MultiDomainDataset,
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
    """Without ``--dataroot``, use the built-in synthetic dataset, generating it on first use
    (the aligned form for paired models, the multi-domain one with ``--synthetic_domains`` k)."""
    if opt.dataroot:
        return
    from data.synthetic import ensure_synthetic_dataset

    aligned = opt.dataset_mode == "aligned"
    domains = getattr(opt, "synthetic_domains", 0) if opt.dataset_mode == "multidomain" else 0
    root = DEFAULT_ALIGNED_DATAROOT if aligned else DEFAULT_DATAROOT
    if domains:
        root = Path("datasets") / f"synthetic_domains{domains}"
    print(f"no --dataroot given: using the built-in synthetic dataset at {root}")
    ensure_synthetic_dataset(root, aligned=aligned, domains=domains)
    opt.dataroot = str(root / "testA") if opt.dataset_mode == "single" else str(root)


__all__ = [
    "AlignedDataset",
    "EpochLoader",
    "EpochSampler",
    "MultiDomainDataset",
    "SingleDataset",
    "UnalignedDataset",
    "available_datasets",
    "create_dataloader",
    "create_dataset",
    "register_dataset",
    "resolve_dataroot",
]
