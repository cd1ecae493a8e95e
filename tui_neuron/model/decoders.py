"""Decoder shapes: what a decoding step reads besides its own state, and what its output layer reads.

The stepper's loop is the same for every shape: read the decoder input, run each layer's cell at its hook
points, run the output. A shape is the small object that says how the input is formed and how the logits are
made, so a decoder that also reads an attention context plugs in here without touching the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor


class DecoderShape(Protocol):
    name: str

    def step_input(self, tokens: Tensor, h: Sequence[Tensor]) -> Tensor:
        """Layer 0's input projection at this step, [B, G*H], from the input tokens and the state before it."""
        ...

    def logits(self, h: Sequence[Tensor]) -> Tensor:
        """[B, V] from every layer's h after the step."""
        ...


class PlainDecoder:
    """No attention, as in Lee et al.: layer 0 reads its embedded input token, the output layer the top h."""

    name = "plain"

    def __init__(self, input_projection: Tensor, w_out_t: Tensor, b_out: Tensor):
        self.input_projection = input_projection  # [V, G*H]: every target embedding through layer 0's input weights
        self.w_out_t, self.b_out = w_out_t, b_out

    def step_input(self, tokens: Tensor, h: Sequence[Tensor]) -> Tensor:
        return self.input_projection[tokens]

    def logits(self, h: Sequence[Tensor]) -> Tensor:
        return torch.addmm(self.b_out, h[-1], self.w_out_t)
