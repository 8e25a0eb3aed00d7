"""A frozen pretrained autoencoder: the ``beta -> 0`` end of the LSI spectrum (math.md 4.3).

The architecture is any registered autoencoder (``autoencoder``, default ``conv``); its weights come
from ``checkpoint``, a file written by ``torch.save`` holding either the autoencoder's
``state_dict`` or a dict with that state under the key ``"autoencoder"`` (what
:func:`interpgen_plugins.lsi.save_autoencoder` writes). A relative path is taken from the
recipe's folder (the ``root`` context). Every parameter gets ``requires_grad = False`` and the
module stays in eval mode; ``frozen = True`` tells the latent pipeline not to train it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from interpgen.config import Part
from interpgen.validators import nonempty_str

from .conv import ConvAutoencoderParams


class PretrainedAutoencoderError(RuntimeError):
    """The checkpoint is missing or does not fit the architecture."""


@attrs.frozen(kw_only=True)
class PretrainedAutoencoderParams:
    """A frozen autoencoder loaded from a checkpoint (state_dict) of a registered architecture."""

    #: Path of the saved state (relative paths: from the recipe's folder).
    checkpoint: str = attrs.field(validator=nonempty_str)
    #: The architecture the state belongs to.
    autoencoder: Part("autoencoder") = attrs.field(factory=ConvAutoencoderParams)  # type: ignore[valid-type]


def build_pretrained(params: PretrainedAutoencoderParams, *, registry: Any, root: Path | None = None,
                     **context: Any) -> nn.Module:
    """Build the architecture, load its weights, freeze it."""
    entry = registry.entry_for(params.autoencoder)
    if entry is None:
        raise TypeError(f"autoencoder 'pretrained': {type(params.autoencoder).__name__} is not a registered autoencoder")
    module = entry.create(params.autoencoder, registry=registry, root=root, **context)
    if not isinstance(module, nn.Module):
        raise TypeError(f"autoencoder 'pretrained': the {entry.name!r} autoencoder has no weights to load")
    path = Path(params.checkpoint)
    if not path.is_absolute():
        path = Path(root if root is not None else Path.cwd()) / path
    if not path.is_file():
        raise PretrainedAutoencoderError(f"autoencoder 'pretrained': checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "autoencoder" in state:
        state = state["autoencoder"]
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise PretrainedAutoencoderError(
            f"autoencoder 'pretrained': {path} does not fit the {entry.name!r} architecture: {exc}") from None
    module.requires_grad_(False)
    module.eval()
    module.frozen = True
    return module
