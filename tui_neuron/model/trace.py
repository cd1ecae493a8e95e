"""What one stepper run computed: inputs, h / c / gates of every layer, greedy outputs and their statistics.

Arrays are indexed [example, step index, neuron]; step index = t + n_enc − 1, where
t<0 is encoding, t=0 the last source token and t≥1 decoding step t. `h`, `gates`
and `c` are the viewed layer (the top one unless `for_layer` chose another).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError


@dataclass
class Trace:
    cell: str
    n_enc: int
    tokens: Tensor  # [B,S] input token of each step (the pad id on left padding)
    valid: Tensor  # [B,S] False on encoder left padding
    h: Tensor  # [B,S,H] after interventions, viewed layer
    gates: dict[str, Tensor]  # name -> [B,S,H], viewed layer
    c: Tensor | None  # [B,S,H] LSTM cell state, viewed layer
    outputs: Tensor  # [B,D] greedy output token of decoding steps 1..D
    top_ids: Tensor  # [B,D,k]
    top_probs: Tensor  # [B,D,k]
    eos_id: int = 3
    logits: Tensor | None = None  # [B,D,V] when kept
    positions: Tensor | None = None  # [B] first control position T
    control_ids: Tensor | None = None  # [B] first control token id
    control_probs: Tensor | None = None  # [B,D] probability of the first control token at each decoding step
    control_ranks: Tensor | None = None  # [B,D] its rank (0 = top)
    layer: int = 0  # the viewed layer
    layer_h: tuple[Tensor, ...] = ()  # every layer's h, bottom first
    layer_c: tuple[Tensor | None, ...] = ()
    layer_gates: tuple[dict[str, Tensor], ...] = ()
    attention: Tensor | None = None  # [B,D,S] attention weights of decoding steps over source positions 0..S-1
    context: Tensor | None = None  # [B,D,H] the context each decoding step read (an attention's or the encoder's)

    @classmethod
    def of_layers(cls, cell: str, enc_ids: Tensor, valid_enc: Tensor, dec_tokens: Tensor, layer_h: tuple[Tensor, ...],
                  layer_c: tuple[Tensor | None, ...], layer_gates: tuple[dict[str, Tensor], ...], **rest) -> Trace:
        """A run from its encoder inputs, decoder inputs and every layer's states, viewing the top layer."""
        B, n_dec = dec_tokens.shape
        return cls(cell=cell, n_enc=enc_ids.shape[1], tokens=torch.cat([enc_ids, dec_tokens], 1),
                   valid=torch.cat([valid_enc, torch.ones(B, n_dec, dtype=torch.bool)], 1), h=layer_h[-1],
                   gates=layer_gates[-1], c=layer_c[-1], layer=len(layer_h) - 1, layer_h=layer_h, layer_c=layer_c,
                   layer_gates=layer_gates, **rest)

    @property
    def n_layers(self) -> int:
        return len(self.layer_h) or 1

    def for_layer(self, layer: int) -> Trace:
        """The same run, viewing another layer's h, c and gates (a cheap view, no copy)."""
        if not 0 <= layer < self.n_layers:
            raise UserError(f"layer {layer} does not exist: the model has layers 0..{self.n_layers - 1}")
        return replace(self, layer=layer, h=self.layer_h[layer], c=self.layer_c[layer],
                       gates=self.layer_gates[layer])

    @property
    def n_dec(self) -> int:
        return self.outputs.shape[1]

    @property
    def times(self) -> np.ndarray:
        return np.arange(-(self.n_enc - 1), self.n_dec + 1)

    def index(self, t: int) -> int:
        i = t + self.n_enc - 1
        if not 0 <= i < self.h.shape[1]:
            raise UserError(f"step {t} is outside this run ({-(self.n_enc - 1)}..{self.n_dec})")
        return i

    def at_hook(self, hook: str) -> Tensor:
        """[B,S,H] values at a hook point of the viewed layer: h, c or a gate name; the decoder's attention and
        context are laid out the same way, NaN on encoder steps."""
        if hook in ("attention", "context"):
            return self._decoder_only(hook)
        values = self.h if hook == "h" else self.c if hook == "c" else self.gates.get(hook)
        if values is None:
            raise UserError(f"this run recorded no {hook!r} (a {self.cell.upper()} records h"
                            f"{', c' if self.cell == 'lstm' else ''} and gates {', '.join(self.gates) or 'none'})")
        return values

    def _decoder_only(self, hook: str) -> Tensor:
        values = self.attention if hook == "attention" else self.context
        if values is None:
            raise UserError(f"this run recorded no {hook}: the model's decoder forms none")
        enc = torch.full((values.shape[0], self.n_enc, values.shape[2]), float("nan"))
        return torch.cat([enc, values], 1)

    def source_weights(self, b: int, t: int) -> list[float]:
        """Example b's attention weights at decoding step t over its source tokens, in order ([] without)."""
        if self.attention is None or not 1 <= t <= self.n_dec:
            return []
        n_source = int(self.valid[b, : self.n_enc].sum())
        return [float(x) for x in self.attention[b, t - 1, :n_source]]

    def window(self, b: int, t0: int, t1: int) -> Tensor:
        """Example b's h over t0..t1 (inclusive), [steps, H]: no hand-made index arithmetic at the callers."""
        return self.h[b, self.index(t0) : self.index(t1) + 1]

    def source_positions(self, b: int) -> list[int]:
        """The steps t (≤ 0) where example b read a source token (left padding excluded)."""
        valid = self.valid[b, : self.n_enc].tolist()
        return [i - (self.n_enc - 1) for i, ok in enumerate(valid) if ok]

    def h_at(self, t: int) -> Tensor:
        return self.h[:, self.index(t)]

    def output_ids(self, b: int) -> list[int]:
        ids = self.outputs[b].tolist()
        return ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids
