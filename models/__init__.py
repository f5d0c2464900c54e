"""Models, each registered by name in its own file; import this package to register them all."""

from models import aggan_model, attentiongan_model, cycle_gan_model, pix2pix_model, test_model  # noqa: F401  (registration)
from models.base_model import BaseModel, Visual
from models.registry import UnknownModelError, available_models, create_model, get_model_class, register_model

__all__ = ["BaseModel", "UnknownModelError", "Visual", "available_models", "create_model", "get_model_class", "register_model"]
