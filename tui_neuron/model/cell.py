"""The GRU and LSTM step math, in torch's gate order (GRU r,z,n; LSTM i,f,g,o), exposing every gate.

One copy of the equations: the stepper runs them, and they reproduce nn.GRU / nn.LSTM
to float precision because the sums are formed as torch forms them (addmm of the
hidden projection, input projection precomputed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

GateEdit = Callable[[str, Tensor], Tensor]
"""Called with each gate as soon as it is computed; returns the gate the step goes on with (hook points).
None (the common case) costs nothing on the per-step path."""


@dataclass(frozen=True)
class LayerWeights:
    """One layer of an nn.GRU/nn.LSTM: transposed views of its weights (the same BLAS calls as F.linear)."""

    w_ih_t: Tensor  # [in, G*H]
    b_ih: Tensor
    w_hh_t: Tensor  # [H, G*H]
    b_hh: Tensor

    @classmethod
    def of(cls, params: dict[str, Tensor], prefix: str, layer: int, suffix: str = "") -> LayerWeights:
        """Layer `layer` of module `prefix`; suffix `_reverse`: a bidirectional module's backward direction."""
        p = {k: params[f"{prefix}.{k}_l{layer}{suffix}"].detach().float() for k in ("weight_ih", "weight_hh",
                                                                                     "bias_ih", "bias_hh")}
        return cls(p["weight_ih"].t(), p["bias_ih"], p["weight_hh"].t(), p["bias_hh"])

    def input_projection(self, x: Tensor) -> Tensor:
        return torch.addmm(self.b_ih, x, self.w_ih_t)


def gru_step(w: LayerWeights, gi: Tensor, h: Tensor, edit: GateEdit | None = None
             ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """h' = n + z·(h − n) with r, z = σ(·), n = tanh(gi_n + r·gh_n): torch's GRU."""
    H = h.shape[-1]
    gh = torch.addmm(w.b_hh, h, w.w_hh_t)
    r, z = torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, 1)
    if edit is not None:
        r, z = edit("r", r), edit("z", z)
    n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    if edit is not None:
        n = edit("n", n)
    return n + z * (h - n), (r, z, n)


def lstm_step(w: LayerWeights, gi: Tensor, h: Tensor, c: Tensor, edit: GateEdit | None = None
              ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """c' = f·c + i·g, h' = o·tanh(c'): torch's LSTM."""
    H = h.shape[-1]
    a = gi + torch.addmm(w.b_hh, h, w.w_hh_t)
    i, f = torch.sigmoid(a[:, : 2 * H]).chunk(2, 1)
    g = torch.tanh(a[:, 2 * H : 3 * H])
    o = torch.sigmoid(a[:, 3 * H :])
    if edit is not None:
        i, f, g, o = edit("i", i), edit("f", f), edit("g", g), edit("o", o)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new, (i, f, g, o)


def step(cell: str, w: LayerWeights, gi: Tensor, h: Tensor, c: Tensor | None, edit: GateEdit | None = None
         ) -> tuple[Tensor, Tensor | None, tuple[Tensor, ...]]:
    """One step of either cell: (h', c' or None, gates); `edit` may change each gate where it is formed."""
    if cell == "gru":
        h_new, gates = gru_step(w, gi, h, edit)
        return h_new, None, gates
    assert c is not None
    return lstm_step(w, gi, h, c, edit)
