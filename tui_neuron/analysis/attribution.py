"""Stage 2 of the token-positioning method: integrated gradients of P(token) with respect to h_t.

The probability is written as a function of h_t alone (captum's layer hooks keep only a module's last
call). The decoder's step is `model.cell`'s, the one copy of the equations the stepper runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..checkpoint.format import Checkpoint
from ..model.cell import LayerWeights
from ..model.cell import step as cell_step
from ..model.stepper import Stepper
from .recording import Recording


def prob_from_state(ckpt: Checkpoint, h: torch.Tensor, x_next: torch.Tensor | None, token: torch.Tensor,
                    c: torch.Tensor | None = None) -> torch.Tensor:
    """P(token) at the step after h (x_next given) or at h's own step (x_next None): a function of h_t alone.
    A one-layer decoder's case of `prob_from_layer_state`."""
    return prob_from_layer_state(ckpt, h, x_next, token, 0, h[:, None], None if c is None else c[:, None])


def prob_from_layer_state(ckpt: Checkpoint, h: torch.Tensor, x_next: torch.Tensor | None, token: torch.Tensor,
                          layer: int, hs: torch.Tensor, cs: torch.Tensor | None = None,
                          weights: Sequence[LayerWeights] | None = None) -> torch.Tensor:
    """P(token) as a function of layer `layer`'s h, every other layer held at its recorded value (hs/cs [B,L,H]:
    every layer's state at the step before the output step), stepped with `model.cell`.

    With x_next, h is layer `layer` at that step and the whole decoder takes one step (layer `layer` from h,
    with its c from cs); without, h is layer `layer` at the output step and only the layers above it take
    their step, up to the output layer. `weights`: the decoder's layers (built here when not given;
    integrated gradients builds them once for all its calls).
    """
    cell, model = ckpt.config.cell, ckpt.model
    weights = decoder_weights(ckpt) if weights is None else weights
    first = 0 if x_next is not None else layer + 1
    x = model.target_embedding(x_next) if x_next is not None else h
    for j in range(first, len(weights)):
        w = weights[j]
        x, _, _ = cell_step(cell, w, w.input_projection(x), h if j == layer else hs[:, j],
                            None if cs is None else cs[:, j])
    return torch.softmax(model.output(x), -1).gather(1, token[:, None])[:, 0]


def decoder_weights(ckpt: Checkpoint) -> list[LayerWeights]:
    """Every decoder layer, as the cell math takes them."""
    weights = ckpt.model.state_dict()
    return [LayerWeights.of(weights, "decoder", j) for j in range(ckpt.config.layers)]


def _states_before_output(ckpt: Checkpoint, rec: Recording, examples: np.ndarray
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every decoder layer's h (and c) at T-1 for these examples, from a clean run of all layers: [B,L,H]."""
    exs = [rec.examples[e] for e in examples]
    T = torch.tensor(rec.positions[examples])
    tr = Stepper(ckpt.model, ckpt.vocab).run(exs, max_steps=int(T.max()) + 1, record_gates=False, topk=0,
                                             stop_at_eos=False)
    rows, cols = torch.arange(len(exs)), tr.n_enc - 1 + T - 1
    hs = torch.stack([h[rows, cols] for h in tr.layer_h], 1)
    cs = torch.stack([c[rows, cols] for c in tr.layer_c], 1) if tr.layer_c[0] is not None else None  # type: ignore[index]
    return hs, cs


def integrated_gradients(ckpt: Checkpoint, rec: Recording, examples: np.ndarray, at_output_step: bool,
                         steps: int = 32, baseline: float = 0.0) -> np.ndarray:
    """Mean IG of P(A at T) w.r.t. h_{T-1} (or h_T when at_output_step), one value per neuron; `steps`
    integration steps from a baseline of `baseline` for every neuron."""
    from captum.attr import IntegratedGradients

    if len(examples) == 0:
        return np.zeros(ckpt.config.hidden)
    T = rec.positions[examples]
    t = T if at_output_step else T - 1
    h = torch.tensor(rec.at(t, examples), dtype=torch.float32)
    token = torch.tensor(rec.token_ids[examples])
    c = None
    if "c" in rec.gates and not at_output_step:
        c = torch.tensor(rec.at(t, examples, rec.gates["c"]), dtype=torch.float32)
    if ckpt.config.layers > 1:
        layer = ckpt.config.layers - 1 if ckpt.analysis_layer is None else ckpt.analysis_layer
        hs, cs = _states_before_output(ckpt, rec, examples)
        x_next = None
        if not at_output_step:
            x_next = torch.tensor(np.where(T >= 2, rec.outputs[examples, np.maximum(T - 2, 0)], ckpt.vocab.bos_id))

        weights = decoder_weights(ckpt)

        def fn_layer(hh, tok, hs_, cs_=None, xx=None):
            return prob_from_layer_state(ckpt, hh, xx, tok, layer, hs_, cs_, weights)
        layer_args = (token, hs, cs, x_next)
        attr = IntegratedGradients(fn_layer).attribute(h, baselines=torch.full_like(h, baseline),
                                                       additional_forward_args=layer_args, n_steps=steps,
                                                       internal_batch_size=4096)
        return attr.detach().mean(0).numpy()
    fn: Callable[..., torch.Tensor]
    extra: tuple
    if at_output_step:
        def fn_at(hh, tok):
            return prob_from_state(ckpt, hh, None, tok)
        fn, extra = fn_at, (token,)
    else:
        # x_T is the output of step T-1 (or <bos> when T = 1)
        prev = np.where(T >= 2, rec.outputs[examples, np.maximum(T - 2, 0)], ckpt.vocab.bos_id)
        x_next = torch.tensor(prev)

        def fn_prev(hh, xx, tok, cc=None):
            return prob_from_state(ckpt, hh, xx, tok, cc)
        fn, extra = fn_prev, (x_next, token) + ((c,) if c is not None else ())
    ig = IntegratedGradients(fn)
    attr = ig.attribute(h, baselines=torch.full_like(h, baseline), additional_forward_args=extra, n_steps=steps,
                        internal_batch_size=4096)
    return attr.detach().mean(0).numpy()


def ig_filter(candidates: Sequence[int], attribution: np.ndarray, keep: float) -> list[int]:
    """Candidates whose |mean IG| is in the top `keep` share of all neurons."""
    if not len(candidates):
        return []
    cut = np.quantile(np.abs(attribution), 1 - keep)
    return [int(j) for j in candidates if abs(attribution[j]) >= cut]


# ----------------------------------------------------------------------------- stage 3: verification.py


