"""Model registry: a model registers itself by name next to its definition.

``@register_model("cycle_gan")`` on the class; ``create_model(name, opt, device)`` builds
it and raises :class:`UnknownModelError` listing the known names otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from util.errors import UserError

if TYPE_CHECKING:
    from models.base_model import BaseModel

_MODELS: dict[str, type[BaseModel]] = {}
ModelClass = TypeVar("ModelClass", bound=type)


class UnknownModelError(UserError, KeyError):
    """``--model`` names no registered model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register_model(name: str) -> Callable[[ModelClass], ModelClass]:
    """Class decorator that makes ``--model name`` select the class."""

    def decorate(cls: ModelClass) -> ModelClass:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is registered twice ({_MODELS[name].__name__}, {cls.__name__})")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return decorate


def available_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def get_model_class(name: str) -> type[BaseModel]:
    """The class registered as ``name``; :class:`UnknownModelError` lists the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(available_models())}") from None


def create_model(name: str, opt: Any, device: Any) -> BaseModel:
    """Build the model registered as ``name`` from parsed options."""
    return get_model_class(name)(opt, device)
