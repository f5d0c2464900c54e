"""Models, each registered by name in its own file; import this package to register them all."""

from models import (  # noqa: F401  (registration)
    aggan_model,
    attentiongan_model,
    attentiongan_multi_model,
    cycle_gan_model,
    guidegan_model,
    pix2pix_model,
    saagan_model,
    test_model,
    uait_model,
)
from models.base_model import BaseModel, NonFiniteLoss, Visual
from models.registry import UnknownModelError, available_models, create_model, get_model_class, register_model

__all__ = [
    "BaseModel",
    "NonFiniteLoss",
    "UnknownModelError",
    "Visual",
    "available_models",
    "create_model",
    "get_model_class",
    "register_model",
]
