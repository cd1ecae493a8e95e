"""State gradients (Verwimp et al.): how much of the input τ steps back the state still holds.

G_τ = ∂s_t/∂x_{t-τ} (s = h, or c for an LSTM), averaged over positions (or over positions whose input
at t-τ belongs to a class), computed from per-step Jacobians (torch.func.jacrev under vmap) of the
checkpoint's own cell, chained with batched matrix products. Normalised by the Cholesky factor D of the
embedding covariance (G·D), whose singular values give σ1, σ1/Σσ and Σ_{i≤5}σi/Σσ per τ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import curve_fit
from torch import nn

from ..errors import UserError
from ..model.cell import LayerWeights
from ..model.cell import step as cell_step


@dataclass
class Cell:
    """A single-layer GRU or LSTM as state gradients need it: one unbatched step on the joint state, through
    the model's own cell math (`model.cell.step`, the same equations the stepper runs)."""

    kind: str
    weights: LayerWeights
    hidden: int

    @classmethod
    def from_module(cls, rnn: nn.Module) -> Cell:
        kinds = {"GRU": "gru", "LSTM": "lstm"}
        if type(rnn).__name__ not in kinds:
            raise UserError(f"state gradients need a GRU or LSTM, not {type(rnn).__name__}")
        params = {f"m.{k}": v for k, v in rnn.state_dict().items()}
        return cls(kinds[type(rnn).__name__], LayerWeights.of(params, "m", 0), int(params["m.weight_hh_l0"].shape[1]))

    def step(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One step on the joint state s ([h] or [h; c] for an LSTM) -> the next joint state."""
        H = self.hidden
        h = s[:H][None]
        c = s[H:][None] if self.kind == "lstm" else None
        h_new, c_new, _ = cell_step(self.kind, self.weights, self.weights.input_projection(x[None]), h, c)
        return h_new[0] if c_new is None else torch.cat([h_new[0], c_new[0]])

    @property
    def state_size(self) -> int:
        return 2 * self.hidden if self.kind == "lstm" else self.hidden

    def unroll(self, X: torch.Tensor, state: str = "h") -> torch.Tensor:
        """X [n,E] -> the state (h, or c) after every step [n,H], through `step`."""
        H = self.hidden
        s = X.new_zeros(self.state_size)
        out = []
        for t in range(X.shape[0]):
            s = self.step(s, X[t])
            out.append(s[H:] if state == "c" else s[:H])
        return torch.stack(out)


@torch.no_grad()
def delay_jacobians(cell: Cell, X: torch.Tensor, max_delay: int, state: str = "h") -> torch.Tensor:
    """N[s, τ] = ∂state_{s+τ}/∂x_s for τ = 0..K, X [n,E] -> [n, K+1, H, E] (zeros where s+τ >= n).

    Uses the chain rule on per-step Jacobians: N[s,0] = ∂s_s/∂x_s and N[s,τ+1] = (∂s_{s+τ+1}/∂s_{s+τ}) N[s,τ],
    with the per-step Jacobians from torch.func (jacrev under vmap) and the products as batched matmuls.
    """
    from torch.func import jacrev, vmap

    n, H = X.shape[0], cell.hidden
    S = cell.state_size
    with torch.enable_grad():
        states = [X.new_zeros(S)]
        for t in range(n):
            states.append(cell.step(states[-1], X[t]))
    prev = torch.stack(states[:-1])  # state before each step [n,S]
    A, B = vmap(jacrev(cell.step, argnums=(0, 1)))(prev.detach(), X)  # [n,S,S], [n,S,E]
    rows = slice(0, H) if state == "h" else slice(H, 2 * H)
    out = X.new_zeros(n, max_delay + 1, H, X.shape[1])
    N = B  # N[s, τ] for all s, τ = 0
    for tau in range(max_delay + 1):
        valid = n - tau
        if valid <= 0:
            break
        out[:valid, tau] = N[:valid, rows]
        if tau < max_delay and valid > 1:
            N = torch.bmm(A[tau + 1 : tau + valid], N[: valid - 1])
    return out


def rowwise_jacobian(cell: Cell, X: torch.Tensor, t: int, state: str = "h") -> torch.Tensor:
    """The slow reference: one backward pass per hidden unit of s_t. X [n,E] -> [H, n, E]."""
    rows = []
    for j in range(cell.hidden):
        x = X.clone().requires_grad_(True)
        s = cell.unroll(x, state)[t, j]
        (g,) = torch.autograd.grad(s, x)
        rows.append(g)
    return torch.stack(rows)


def gradient_matrices(cell: Cell, embedded: Sequence[torch.Tensor], max_delay: int, state: str = "h",
                      classes: Sequence[np.ndarray] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Mean G_τ [K+1, H, E] over every position with t-τ >= 0; with `classes` (a label per input position,
    None to skip), one mean per label too."""
    H, E = cell.hidden, embedded[0].shape[1]
    sums: dict[str, np.ndarray] = {"all": np.zeros((max_delay + 1, H, E))}
    counts: dict[str, np.ndarray] = {"all": np.zeros(max_delay + 1)}
    done = 0
    for i, x in enumerate(embedded):
        N = delay_jacobians(cell, x, max_delay, state).numpy()  # [n, K+1, H, E], indexed by input position s
        n = len(x)
        for tau in range(min(max_delay, n - 1) + 1):
            blocks = N[: n - tau, tau]
            sums["all"][tau] += blocks.sum(0)
            counts["all"][tau] += n - tau
            if classes is not None:
                labels = np.asarray(classes[i])[: n - tau]
                for lab in set(labels.tolist()) - {None}:
                    sel = labels == lab
                    key = str(lab)
                    if key not in sums:
                        sums[key] = np.zeros_like(sums["all"])
                        counts[key] = np.zeros(max_delay + 1)
                    sums[key][tau] += blocks[sel].sum(0)
                    counts[key][tau] += sel.sum()
        done += 1
        if progress:
            progress(done, len(embedded))
    return {k: sums[k] / np.maximum(counts[k], 1)[:, None, None] for k in sums} | {
        f"count:{k}": counts[k] for k in counts}


def cholesky_factor(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and lower Cholesky factor D of the covariance of embedding rows (one row per token occurrence),
    so that D⁻¹(x - μ) has identity covariance."""
    mu = embeddings.mean(0)
    cov = np.cov(embeddings, rowvar=False) + 1e-6 * np.eye(embeddings.shape[1])
    return mu, np.linalg.cholesky(cov)


def spectrum(G: np.ndarray, D: np.ndarray) -> dict[str, Any]:
    """Per τ: singular values of G_τ·D -> σ1, σ1/Σσ, Σ_{i≤5}σi/Σσ."""
    s1, share1, share5 = [], [], []
    for Gt in G:
        s = np.linalg.svd(Gt @ D, compute_uv=False)
        total = s.sum() or 1.0
        s1.append(float(s[0]))
        share1.append(float(s[0] / total))
        share5.append(float(s[:5].sum() / total))
    return {"sigma1": s1, "sigma1_share": share1, "top5_share": share5}


def exp_fit(sigma1: Sequence[float]) -> dict[str, float]:
    """Fit σ1(τ) = a·e^{-bτ}."""
    taus = np.arange(len(sigma1), dtype=float)
    y = np.asarray(sigma1, dtype=float)
    try:
        (a, b), _ = curve_fit(lambda t, a, b: a * np.exp(-b * t), taus, y, p0=(max(y[0], 1e-6), 0.1), maxfev=10000)
    except (RuntimeError, ValueError):
        return {"a": float("nan"), "b": float("nan")}
    return {"a": float(a), "b": float(b)}


def relative_memory(G: np.ndarray, D: np.ndarray, d: np.ndarray, top_n: int = 5) -> dict[str, Any]:
    """For a difference vector d between two token classes (embedding space): per τ, the relative memory
    m = ‖G·D·u‖/σ1 of the unit vector u along D⁻¹d (1: remembered as well as the best direction, 0: forgotten),
    and the cosine of u with the span of the top-n right singular vectors of G·D."""
    dw = np.linalg.solve(D, d)
    dw = dw / (np.linalg.norm(dw) or 1.0)
    m, cos = [], []
    for Gt in G:
        GD = Gt @ D
        _, s, Vt = np.linalg.svd(GD)
        m.append(float(np.linalg.norm(GD @ dw) / (s[0] or 1.0)))
        cos.append(float(np.linalg.norm(Vt[:top_n] @ dw) / (np.linalg.norm(dw) or 1.0)))
    return {"relative_memory": m, "cosine_top_n": cos, "top_n": top_n}


def memory_report(cell: Cell, embedding: np.ndarray, sequences: Sequence[Any], max_delay: int = 20,
                  state: str = "h", classes: Sequence[np.ndarray] | None = None, min_count: int = 50,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """σ curves overall and per class (with counts and exponential fits), on sequences of token ids."""
    if not sequences:
        raise UserError("no sequences to compute state gradients on")
    embedded = [torch.tensor(embedding[np.asarray(s)], dtype=torch.float32) for s in sequences]
    occurrences = np.concatenate([embedding[np.asarray(s)] for s in sequences])
    _, D = cholesky_factor(occurrences)
    mats = gradient_matrices(cell, embedded, max_delay, state, classes, progress=progress)
    out: dict = {"max_delay": max_delay, "state": state, "curves": {}}
    for key, G in mats.items():
        if key.startswith("count:"):
            continue
        count = int(mats[f"count:{key}"][0])
        if key != "all" and count < min_count:
            continue
        curve = spectrum(G, D)
        curve["fit"] = exp_fit(curve["sigma1"])
        curve["count"] = count
        out["curves"][key] = curve
    out["_G"] = mats["all"]
    out["_D"] = D
    return out
