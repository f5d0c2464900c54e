"""How a registered network is run: memory format, compilation, data parallelism, fp32 outputs.

``BaseModel.add_network`` wraps every network in a :class:`NetworkRunner`, so model code keeps
calling ``self.networks["G_A"](x)`` and gets, without handling any of it itself:

- ``--channels_last``: weights and 4-d inputs in channels-last memory format;
- ``--compile``: ``torch.compile`` of the network (checked once, with a clear error where the
  platform cannot compile);
- under ``torchrun``: ``DistributedDataParallel`` for networks that are being trained. A call
  made while all of a network's parameters are frozen (a discriminator during the generator
  step, an attention network after UAIT's switch) bypasses DDP, which would otherwise wait
  for gradients that never come;
- outputs cast to fp32, so losses computed from them are fp32 under any ``--precision``.

``state_dict``/``load_state_dict`` are the wrapped network's own, so checkpoints hold the
same keys whatever the run options.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from util.errors import UserError
from util.precision import channels_last, to_fp32


def check_compile_supported(device: torch.device) -> None:
    """Raise a :class:`UserError` when ``torch.compile`` cannot work here, before any training."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        raise UserError(
            f"--compile: torch.compile is not supported on this platform (Python {sys.version.split()[0]}, "
            f"torch {torch.__version__}); run without --compile"
        )
    if device.type == "cpu" and not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        raise UserError(
            "--compile on the CPU needs a C++ compiler (g++ or clang++) on PATH; install one or run without --compile"
        )


# torch.compile's compiled kernels and graphs, kept between runs (the default under /tmp may be
# cleaned at reboot): a second run of the same configuration skips most of the compiling.
COMPILE_CACHE = Path.home() / ".cache" / "attngan-toolkit" / "inductor"


def prepare_compile(device: torch.device) -> str:
    """Before the first ``torch.compile``: check that it can work, and keep inductor's cache in
    :data:`COMPILE_CACHE` unless ``TORCHINDUCTOR_CACHE_DIR`` names another place; returns the
    message that says when compiling happens and where the cache is."""
    check_compile_supported(device)
    cache = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(COMPILE_CACHE))
    Path(cache).mkdir(parents=True, exist_ok=True)
    return (f"--compile: each network is compiled on its first training steps (about a minute per configuration on a "
            f"CPU, so the first steps are slow); inductor's cache is kept in {cache}, so later runs of the same "
            f"configuration start faster")


class NetworkRunner(nn.Module):
    """One network as the model calls it; see the module docstring."""

    def __init__(self, network: nn.Module, *, use_channels_last: bool = False, compile_network: bool = False) -> None:
        super().__init__()
        self.network = network
        self.use_channels_last = use_channels_last
        if use_channels_last:
            network.to(memory_format=torch.channels_last)
        # Not registered as submodules: parameters, buffers and modes all belong to ``network``.
        self.__dict__["_plain"] = torch.compile(network) if compile_network else network
        self.__dict__["_parallel"] = None
        self.__dict__["_compile"] = compile_network

    def make_data_parallel(self, device: torch.device) -> None:
        """Average this network's gradients over the ``torchrun`` processes."""
        # Buffers (batch-norm statistics) are broadcast from rank 0 before each forward: DDP's default,
        # left implicit because torch >= 2.11 deprecates the broadcast_buffers argument.
        parallel = nn.parallel.DistributedDataParallel(self.network, device_ids=[device.index] if device.type == "cuda" else None)
        self.__dict__["_parallel"] = torch.compile(parallel) if self._compile else parallel

    def _runner(self) -> Any:
        parallel = self.__dict__["_parallel"]
        if parallel is not None and self.training and torch.is_grad_enabled():
            if any(p.requires_grad for p in self.network.parameters()):
                return parallel
        return self.__dict__["_plain"]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.use_channels_last:
            args = channels_last(args)
        try:
            output = self._runner()(*args, **kwargs)
        except Exception as err:
            if self._compile and type(err).__module__.startswith("torch._dynamo"):
                raise UserError(f"--compile failed for {type(self.network).__name__}: {str(err).splitlines()[0]}; "
                                f"run without --compile") from err
            raise
        return to_fp32(output)

    def train(self, mode: bool = True) -> NetworkRunner:
        super().train(mode)
        parallel = self.__dict__["_parallel"]
        if parallel is not None:
            parallel.train(mode)
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)
