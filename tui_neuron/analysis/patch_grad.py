"""One differentiable rerun of a single example, for attribution patching: the gradient of a metric at one
decoding step with respect to every hook point's values (h, c, each gate) at every step and layer.

The run replays the stepper's equations (`model.cell.step`, the stepper's weights and decoder shape) with the
decoder inputs held at the recorded greedy tokens, so the gradient is that of the run the exact sweep patches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..model.cell import step as cell_step
from ..model.examples import Example
from ..model.stepper import Stepper


def _keep_gate(keep: Callable[[str, int, Tensor], Tensor], layer: int, name: str, gate: Tensor) -> Tensor:
    return keep(name, layer, gate)


def gradient_run(stepper: Stepper, example: Example, outputs: Sequence[int], metric_step: int,
                 metric: Callable[[Tensor], Tensor], hooks: Sequence[str] = ("h",)) -> dict[tuple[str, int], Tensor]:
    """(hook, layer) -> [steps, H] ∂metric/∂values for each of `hooks`, indexed like a trace (t + n_enc − 1), up
    to `metric_step`. Only the hooks asked for are kept in the graph's leaves (a gate costs a copy a step)."""
    shape = stepper.plain_decoder("the attribution sweep")
    kept: dict[tuple[str, int], list[Tensor]] = {}
    gates = any(hook not in ("h", "c") for hook in hooks)
    n_layers, cell = stepper.n_layers, stepper.config.cell
    # the zero start state requires grad so that every value after it is part of the graph
    h: list[Tensor] = [torch.zeros(1, stepper.hidden, requires_grad=True) for _ in range(n_layers)]
    c: list[Tensor | None] = [torch.zeros(1, stepper.hidden, requires_grad=True) if cell == "lstm" else None
                              for _ in range(n_layers)]

    def keep(hook: str, layer: int, value: Tensor) -> Tensor:
        if hook not in hooks:
            return value
        if hook not in ("h", "c"):
            value = value.clone()  # a gate may be a view of the step's sum: its own node for its own gradient
        value.retain_grad()
        kept.setdefault((hook, layer), []).append(value)
        return value

    def layers_step(part: str, x0: Tensor) -> None:
        below = x0
        for k, w in enumerate(stepper.w[part]):
            x = below if k == 0 else w.input_projection(below)
            edit = functools.partial(_keep_gate, keep, k) if gates else None
            h_new, c_new, _ = cell_step(cell, w, x, h[k], c[k], edit)
            h[k] = keep("h", k, h_new)
            c[k] = None if c_new is None else keep("c", k, c_new)
            below = h[k]

    with torch.enable_grad():
        for token in example.encoder_ids(stepper.vocab):
            layers_step("encoder", stepper.in_proj["encoder"][token][None])
        tok = stepper.vocab.bos_id
        for t in range(1, metric_step + 1):
            layers_step("decoder", shape.step_input(torch.tensor([tok]), h))
            tok = int(outputs[t - 1])
        value = metric(shape.logits(h))
        value.backward()
    return {key: torch.cat([v.grad if v.grad is not None else torch.zeros_like(v) for v in values]).detach()
            for key, values in kept.items()}
