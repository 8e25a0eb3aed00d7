"""What every built-in prior shares: its registered name, the event shape it was built for, and
where (device, dtype) its samples go."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .shapes import check_input, check_sample_request, event_shape_of


class BuiltPrior(nn.Module):
    """Base class of the built-in priors (math.md 0: x0 ~ rho0 at t = 0).

    Every prior is an ``nn.Module`` so that its tensors follow the model across devices; fixed
    priors keep theirs as non-persistent buffers, learnable ones as parameters that train with
    the model. ``sample`` puts samples on ``device``/``dtype`` when given, else where the prior's
    own tensors live (CPU and the default dtype for a prior without tensors).
    """

    #: the registered name, used in error messages
    prior_name: str = "prior"
    #: True when x0 are samples of a data set (what the mirror interpolant, math.md 1.6, needs)
    is_data: bool = False

    def __init__(self, event_shape: tuple[int, ...]):
        super().__init__()
        self.event_shape = event_shape_of(event_shape, self.prior_name)
        self.standard_normal = False

    def _own_tensor(self) -> Tensor | None:
        for t in self.parameters():
            return t
        for t in self.buffers():
            return t
        return None

    def _placement(self, device: Any, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
        own = self._own_tensor()
        if device is None:
            device = own.device if own is not None else torch.device("cpu")
        if dtype is None:
            dtype = own.dtype if own is not None else torch.get_default_dtype()
        return torch.device(device), dtype

    def _check_request(self, num: int, shape: Any) -> tuple[int, ...]:
        return check_sample_request(num, shape, self.event_shape, self.prior_name)

    def _check_input(self, x: Tensor) -> None:
        check_input(x, self.event_shape, self.prior_name)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"
