"""Translate test images: ``python test.py --dataroot ./datasets/horse2zebra --name h2z --model cycle_gan``.

Writes ``RESULTS_DIR/NAME/PHASE_EPOCH/index.html`` with, per input, every picture the
model declares (input, output, reconstruction, attention maps...), and ``results.json``
for ``scripts/evaluate.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from data import create_dataloader, create_dataset, resolve_dataroot
from models import create_model, get_model_class
from options import parse_test_options
from options.base_options import adopt_checkpoint_options, save_options, select_device
from options.validation import validate_options
from util.checkpoint import check_architecture, checkpoint_path, load_checkpoint, non_finite_entries
from util.errors import UserError, run_cli
from util.results import ResultWriter


def run_test(opt: argparse.Namespace) -> Path:
    """Translate up to ``--num_test`` inputs; returns the path of the HTML page."""
    resolve_dataroot(opt)
    device = select_device(opt.gpu_ids)
    run_dir = Path(opt.checkpoints_dir) / opt.name
    path = checkpoint_path(run_dir, opt.epoch)
    checkpoint = load_checkpoint(path)
    trained_with = checkpoint.get("model")
    if trained_with != opt.model and opt.model != "test":
        raise UserError(f"checkpoint {path} was trained with --model {trained_with}; pass --model {trained_with}")
    if opt.model != "test":
        adopted = adopt_checkpoint_options(opt, checkpoint)
        if adopted:
            print(f"options from the run: {', '.join(f'--{k} {getattr(opt, k)}' for k in adopted)}")
        validate_options(opt, get_model_class(opt.model).validate_options)  # the size against the run's --netG
    broken = non_finite_entries(checkpoint["state"]["networks"])
    if broken:
        raise UserError(
            f"checkpoint {path} holds non-finite weights ({', '.join(broken[:3])}): the training diverged before it "
            f"was written and it cannot produce images; test an earlier one with --epoch N "
            f"(available: {sorted(p.name for p in path.parent.glob('*.pt'))})"
        )
    dataset = create_dataset(opt)
    model = create_model(opt.model, opt, device)
    check_architecture(checkpoint["architecture"], model.architecture(), path)
    model.prepare_from_checkpoint(checkpoint)
    try:
        model.load_networks(checkpoint["state"]["networks"], model.inference_networks)
    except (KeyError, RuntimeError) as err:
        raise UserError(f"checkpoint {path} does not fit --model {opt.model}: {err}") from None
    model.set_mode(not opt.eval)
    # Models whose pictures depend on the training stage see the checkpoint's last epoch.
    model.epoch = checkpoint["progress"]["epoch"] - 1

    epoch_label = opt.epoch if opt.epoch == "latest" else f"{int(opt.epoch)}"
    result_dir = Path(opt.results_dir) / opt.name / f"{opt.phase}_{epoch_label}"
    save_options(opt, result_dir, "test")
    meta = {
        "name": opt.name,
        "model": opt.model,
        "epoch": epoch_label,
        "checkpoint_epoch": checkpoint["progress"]["epoch"] - 1,
        "dataroot": str(Path(opt.dataroot).resolve()),
        "phase": opt.phase,
        "direction": opt.direction,
        "dataset_mode": opt.dataset_mode,
    }
    if getattr(opt, "domain_names", None):
        meta["domain_names"] = list(opt.domain_names)
    writer = ResultWriter(
        result_dir,
        f"{opt.name} ({opt.model}), {opt.phase}, epoch {epoch_label}",
        meta,
        aspect_ratio=opt.aspect_ratio,
        width=opt.display_winsize,
    )
    total = len(dataset) if opt.num_test <= 0 else min(opt.num_test, len(dataset))
    bar = tqdm(total=total, unit="img", desc="test", disable=opt.no_progress, dynamic_ncols=True)
    for batch in create_dataloader(dataset, opt, shuffle=False):
        if writer.rows and len(writer.rows) >= total:
            break
        model.set_input(batch)
        model.test()
        visuals = model.current_visuals()
        broken = [name for name, visual in visuals.items() if not bool(torch.isfinite(visual.image).all())]
        if broken:
            raise UserError(
                f"the model produced non-finite pictures ({', '.join(broken)}) for {batch['A_paths'][0]}; "
                f"results.json and the page were not written. Check the checkpoint (an earlier --epoch), or --precision fp32"
            )
        bar.update(writer.add_batch(visuals, batch, limit=total - len(writer.rows)))
    bar.close()
    page = writer.save()
    print(f"results: {page}")
    return page


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(lambda: run_test(parse_test_options(argv)))


if __name__ == "__main__":
    sys.exit(main())
