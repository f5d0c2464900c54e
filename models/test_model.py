"""One-direction inference: translate a single folder with one trained generator.

``python test.py --model test --dataroot FOLDER --name RUN --direction AtoB`` loads the
generator that maps A to B (``G_A`` of a cycle_gan-style run, ``G`` of pix2pix) from
RUN's checkpoint; ``--model_suffix`` picks another network name explicitly.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from models.base_model import BaseModel, Visual
from models.inference import Translator
from models.registry import register_model


@register_model("test")
class TestModel(BaseModel):
    architecture_options = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        if is_train:
            parser.error("--model test is for test.py only (it translates one folder with a trained generator)")
        parser.set_defaults(dataset_mode="single", no_dropout=True)
        parser.add_argument(
            "--model_suffix",
            type=str,
            default="",
            help="network to load from the checkpoint, e.g. G_B; default: G_A for AtoB, G_B for BtoA, or G",
        )
        return parser

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        super().__init__(opt, device)
        self.add_network("G", self.build_generator(opt.input_nc, opt.output_nc))

    def load_networks(self, saved: dict[str, dict[str, torch.Tensor]], names: list[str]) -> None:
        """Load the chosen generator of the training run into ``G``."""
        candidates = (
            [self.opt.model_suffix] if self.opt.model_suffix else (["G_A", "G"] if self.opt.direction == "AtoB" else ["G_B", "G"])
        )
        for candidate in candidates:
            if candidate in saved:
                self.networks["G"].load_state_dict(saved[candidate])
                return
        raise KeyError(f"none of the networks {candidates} is in the checkpoint (it has {sorted(saved)}); use --model_suffix")

    def inference_module(self, direction: str = "AtoB", target_domain: str | None = None) -> torch.nn.Module:
        return Translator(self.networks["G"].network)

    def set_input(self, batch: dict[str, Any]) -> None:
        self.real = batch["A"].to(self.device)

    def forward(self) -> None:
        self.fake = self.networks["G"](self.real)

    def current_visuals(self) -> dict[str, Visual]:
        return {"real": Visual(self.real, "A", "real"), "fake": Visual(self.fake, "A", "fake")}
