"""Option values checked right after parsing, so a bad value is a message, not a traceback.

Every problem found is listed in one :class:`util.errors.UserError` (exit status 2), each
naming the option, the value and what is allowed. Rules that depend on the model (the image
size a generator needs, a model's own options) come from ``BaseModel.validate_options``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from util.errors import UserError

# option -> (test, what is allowed); options absent from a parse (train-only, say) are skipped.
Rule = tuple[Callable[[float], bool], str]
AT_LEAST_1: Rule = (lambda v: v >= 1, "an integer >= 1")
AT_LEAST_0: Rule = (lambda v: v >= 0, ">= 0")
POSITIVE: Rule = (lambda v: v > 0, "> 0")
RULES: dict[str, Rule] = {
    "batch_size": AT_LEAST_1,
    "load_size": AT_LEAST_1,
    "crop_size": AT_LEAST_1,
    "ngf": AT_LEAST_1,
    "ndf": AT_LEAST_1,
    "n_layers_D": AT_LEAST_1,
    "display_winsize": AT_LEAST_1,
    "max_dataset_size": AT_LEAST_1,
    "num_threads": AT_LEAST_0,
    "init_gain": POSITIVE,
    "input_nc": (lambda v: v in (1, 3), "1 (grayscale) or 3 (RGB)"),
    "output_nc": (lambda v: v in (1, 3), "1 (grayscale) or 3 (RGB)"),
    # training
    "lr": POSITIVE,
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "n_epochs": AT_LEAST_0,
    "n_epochs_decay": AT_LEAST_0,
    "epoch_count": AT_LEAST_1,
    "pool_size": AT_LEAST_0,
    "print_freq": AT_LEAST_1,
    "display_freq": AT_LEAST_1,
    "display_port": (lambda v: 1 <= v <= 65535, "a port number in 1..65535"),
    "save_latest_freq": AT_LEAST_0,
    "save_epoch_freq": AT_LEAST_1,
    "max_iters": AT_LEAST_0,
    "time_limit": AT_LEAST_0,
    "lr_decay_iters": AT_LEAST_1,
    "max_skipped_steps": AT_LEAST_0,
    # testing
    "num_test": AT_LEAST_0,
    "aspect_ratio": POSITIVE,
}
# Loss weights and curriculum values of every model: weights are >= 0, r is a fraction.
PREFIX_RULES: dict[str, Rule] = {"lambda_": AT_LEAST_0, "r_": (lambda v: 0 <= v <= 1, "in [0, 1]")}


def value_problems(opt: argparse.Namespace) -> list[str]:
    """Problems with single option values (ranges, NaN)."""
    problems = []
    for key, value in sorted(vars(opt).items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value) and key != "max_dataset_size":
            problems.append(f"--{key} {value}: must be a finite number")
            continue
        rule = RULES.get(key) or next((r for prefix, r in PREFIX_RULES.items() if key.startswith(prefix)), None)
        if rule is not None and not rule[0](value):
            problems.append(f"--{key} {value}: must be {rule[1]}")
    return problems


def size_problems(opt: argparse.Namespace) -> list[str]:
    """Crop and load sizes that cannot work together."""
    problems = []
    if opt.preprocess in ("resize_and_crop", "scale_width_and_crop") and opt.crop_size > opt.load_size:
        problems.append(
            f"--crop_size {opt.crop_size} is larger than --load_size {opt.load_size} (--preprocess {opt.preprocess} "
            f"resizes to the load size, then crops): use --crop_size <= --load_size"
        )
    epoch = str(getattr(opt, "epoch", "latest"))
    if epoch != "latest" and not epoch.isdigit():
        problems.append(f"--epoch {epoch}: must be 'latest' or an epoch number")
    if getattr(opt, "isTrain", False) and opt.n_epochs + opt.n_epochs_decay < 1:
        problems.append(f"--n_epochs {opt.n_epochs} --n_epochs_decay {opt.n_epochs_decay}: train for at least one epoch")
    return problems


def validate_options(opt: argparse.Namespace, model_problems: Callable[[argparse.Namespace], list[str]]) -> None:
    """Raise one :class:`UserError` listing every problem, the model's own (``model_problems(opt)``) included."""
    problems = value_problems(opt)
    if not problems:  # the size and model rules assume sane values
        problems = size_problems(opt) + model_problems(opt)
    if problems:
        lines = "\n  ".join(problems)
        raise UserError(f"invalid option value{'s' if len(problems) > 1 else ''}:\n  {lines}")
