"""What a training run is asked to do (TrainConfig), where it stands (TrainState), and its schedule."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

from ..errors import ParameterError, UserError
from ..model.config import CELLS, ModelConfig

MODEL_OPTIONS = ("cell", "emb_dim", "hidden", "layers", "shared_embedding", "max_position", "n_signals", "max_len")

SCHEDULES = ("cosine", "plateau")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class SamplingConfig:
    mode: str = "spans"  # spans | lines
    min_len: int = 4
    max_len: int = 16
    n_signals: int = 1


# named sets of defaults, recorded in the checkpoint's training record; explicit options win over either
RECIPES: dict[str, dict[str, float]] = {
    # generalises from one book in 20 minutes, but spreads storing and outputting over about half of h
    "robust": {"dropout": 0.3, "word_dropout": 0.5, "control_weight": 5.0, "weight_decay": 0.01},
    # the paper's: plain per-token cross-entropy, no regularisation
    "paper": {"dropout": 0.0, "word_dropout": 0.0, "control_weight": 1.0, "weight_decay": 0.0},
}
RECIPE_FIELDS = tuple(RECIPES["robust"])


@dataclass
class TrainConfig:
    """A run: the model to build, the examples to draw, and the recipe. `from_options` takes the CLI's flat names."""

    corpus: tuple[str, ...]
    out: str
    model: ModelConfig = field(default_factory=lambda: ModelConfig(vocab_size=0))  # vocab_size: the built vocabulary's
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # max_len, n_signals: the model's (checked)
    vocab_words: int = 2000  # words kept by frequency; the model's vocab_size adds the special and position tokens
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    max_steps: int | None = None
    time_budget: float | None = None  # seconds
    eval_every: int = 250
    eval_examples: int = 1000
    patience: int = 20  # evaluations without improvement before stopping
    lr_patience: int = 4  # plateau schedule: evaluations without improvement before halving the learning rate
    curriculum_steps: int = 1500  # short targets first
    curriculum_len: int = 6
    heldout_fraction: float = 0.05
    grad_clip: float = 1.0
    save_dtype: str = "float32"
    dropout: float = 0.3  # on embeddings and decoder outputs, training only
    word_dropout: float = 0.5  # share of decoder inputs replaced by <unk>, training only
    weight_decay: float = 0.01  # AdamW, decoupled
    label_smoothing: float = 0.0
    control_weight: float = 5.0  # weight of the control tokens' loss terms (1: plain cross-entropy, as the paper)
    schedule: str = "cosine"  # cosine (warmup, then decay over the budget) | plateau (halve on plateaus)
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05  # cosine floor, as a fraction of lr
    device: str = "cpu"
    recipe: str = "robust"  # the named defaults the four options above came from (RECIPES)
    init_from: str | None = None  # a checkpoint whose weights start the run (same model options and vocabulary)
    world_size: int = field(default=1, compare=False)

    @classmethod
    def from_options(cls, **options) -> TrainConfig:
        """From flat option names (cell, hidden, max_len, mode, …): each goes to the part that owns it. The recipe's
        options left out (or None) take its named defaults."""
        options = {k: v for k, v in options.items() if v is not None or k not in RECIPE_FIELDS}
        recipe = options.get("recipe", "robust")
        if recipe not in RECIPES:
            raise ParameterError("recipe", f"{{param}} {recipe!r}: use one of {', '.join(RECIPES)}")
        options = {**RECIPES[recipe], **options}
        model = {k: options.pop(k) for k in MODEL_OPTIONS if k in options}
        sampling = {k: options.pop(k) for k in ("mode", "min_len") if k in options}
        model_cfg = ModelConfig(vocab_size=0, **model)
        return cls(model=model_cfg, sampling=SamplingConfig(**sampling, max_len=model_cfg.max_len,
                                                            n_signals=model_cfg.n_signals), **options)

    def options(self) -> dict:
        """The flat option names and values: what resume files and a checkpoint's training record keep."""
        flat = {k: v for k, v in asdict(self).items() if k not in ("model", "sampling")}
        model = {k: v for k, v in asdict(self.model).items() if k != "vocab_size"}
        return {**model, "mode": self.sampling.mode, "min_len": self.sampling.min_len, **flat}

    def model_config(self, vocab_size: int) -> ModelConfig:
        return replace(self.model, vocab_size=vocab_size)

    def check(self) -> None:
        """Every option's type and range, before anything is loaded or written."""
        if (self.sampling.max_len, self.sampling.n_signals) != (self.model.max_len, self.model.n_signals):
            raise UserError("the sampling's max_len and n_signals must be the model's (build with from_options)")
        o = SimpleNamespace(**self.options())
        if o.cell not in CELLS:
            raise ParameterError("cell", f"{{param}} {o.cell!r}: use one of {', '.join(CELLS)}")
        if o.mode not in ("spans", "lines"):
            raise ParameterError("mode", f"{{param}} {o.mode!r}: use spans or lines")
        if self.schedule not in SCHEDULES:
            raise ParameterError("schedule", f"{{param}} {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.device not in DEVICES:
            raise ParameterError("device", f"{{param}} {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.max_steps is None and self.time_budget is None:
            raise ParameterError("max_steps", "give a budget: {param} or {time_budget}", others=["time_budget"])
        if self.max_steps is not None and self.max_steps < 1:
            raise ParameterError("max_steps", f"{{param}} {self.max_steps}: give a positive number of steps")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise ParameterError("time_budget", "{param} must be a positive number")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ParameterError("lr", f"{{param}} {self.lr}: give a positive finite learning rate, e.g. 2e-3")
        for name, lo, hi in (("dropout", 0, 1), ("word_dropout", 0, 1), ("label_smoothing", 0, 1),
                             ("heldout_fraction", 0, 1), ("min_lr_ratio", 0, 1.000001)):
            value = getattr(o, name)
            if not (math.isfinite(value) and lo <= value < hi):
                raise ParameterError(name, f"{{param}} {value}: must be in [{lo}, {hi:g})")
        if not (math.isfinite(self.control_weight) and 0 < self.control_weight <= 100):
            raise ParameterError("control_weight", f"{{param}} {self.control_weight}: must be in (0, 100]")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ParameterError("weight_decay", f"{{param}} {self.weight_decay}: must be zero or positive")
        if not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ParameterError("grad_clip", "{param} must be positive")
        if not 1 <= o.max_position <= 1000:
            raise ParameterError("max_position", f"{{param}} {o.max_position}: must be between 1 and 1000")
        if not 1 <= o.n_signals <= o.max_position:
            raise ParameterError("n_signals", f"{{param}} {o.n_signals}: must be between 1 and max_position")
        if o.min_len > o.max_len or o.min_len < 1:
            raise ParameterError("min_len", "{param} must be between 1 and max_len")
        if o.max_position > o.max_len:
            raise ParameterError("max_position", f"{{param}} {o.max_position} exceeds max_len {o.max_len}")
        for name in ("emb_dim", "hidden", "vocab_words", "batch_size", "eval_every", "eval_examples", "patience",
                     "lr_patience", "curriculum_len"):
            if getattr(o, name) < 1:
                raise ParameterError(name, "{param} must be positive")
        for name in ("curriculum_steps", "warmup_steps"):
            if getattr(o, name) < 0:
                raise ParameterError(name, "{param} must be zero or positive")
        self._check_sizes(o)
        if not 1 <= o.layers <= 16:
            raise ParameterError("layers", f"{{param}} {o.layers}: must be between 1 and 16")
        if o.hidden > 8192 or o.emb_dim > 8192 or o.vocab_words > 1_000_000:
            raise ParameterError("hidden", "{param} and emb_dim must be at most 8192, vocab_words at most 1,000,000")


    def _check_sizes(self, o: SimpleNamespace) -> None:
        """Upper bounds: what memory and time allow on one machine (and what a seed can be)."""
        if not 0 <= o.seed <= 2**32 - 1:
            raise ParameterError("seed", f"{{param}} {o.seed}: a seed is a 32-bit unsigned integer (0..4,294,967,295)")
        if o.batch_size > 65_536:
            raise ParameterError("batch_size", f"{{param}} {o.batch_size}: more than 65,536 examples per step would "
                                 "not fit in memory")
        if o.eval_examples > 1_000_000:
            raise ParameterError("eval_examples", f"{{param}} {o.eval_examples}: at most 1,000,000 held-out examples")
        for name in ("max_steps", "eval_every", "patience", "lr_patience", "curriculum_steps", "curriculum_len",
                     "warmup_steps"):
            value = getattr(o, name)
            if value is not None and value > 1_000_000_000:
                raise ParameterError(name, f"{{param}} {value}: at most 1,000,000,000")


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + ".resume.safetensors")


def check_output(out: str | Path, resume: bool, force: bool) -> None:
    """Refuse an output that cannot be written, or one that would replace earlier work unasked."""
    out = Path(out)
    if out.is_dir():
        raise ParameterError("out", f"{{param}} {out} is a folder; give a file name such as {out / 'model.safetensors'}")
    parent = out.parent
    if not parent.is_dir():
        raise ParameterError("out", f"{{param}} {out}: the folder {parent} does not exist; create it first")

    if not os.access(parent, os.W_OK | os.X_OK):
        raise ParameterError("out", f"{{param}} {out}: the folder {parent} is not writable; choose another folder")
    if resume or force:
        return
    for existing in (out, resume_path(out)):
        if existing.exists():
            raise ParameterError("force", f"{existing} exists: continue that run (resume) or replace it ({{param}})")


@dataclass
class TrainState:
    step: int = 0
    elapsed: float = 0.0
    lr: float = 0.0
    best_acc: float = -1.0
    best_loss: float = float("inf")
    best_step: int = 0
    since_best: int = 0
    history: list | None = None
    rng_state: list | dict | None = None  # numpy bit-generator state per rank
    stopped: str = ""


def budget_fraction(cfg: TrainConfig, s: TrainState) -> float:
    """How much of the step or time budget is spent, in [0, 1]."""
    frac = 0.0
    if cfg.max_steps:
        frac = max(frac, s.step / cfg.max_steps)
    if cfg.time_budget:
        frac = max(frac, s.elapsed / cfg.time_budget)
    return min(frac, 1.0)


def scheduled_lr(cfg: TrainConfig, s: TrainState) -> float:
    """Warmup then cosine decay to min_lr_ratio·lr over the budget; the plateau schedule keeps state.lr."""
    if cfg.schedule == "plateau":
        return s.lr
    warm = min(1.0, (s.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * budget_fraction(cfg, s)))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def free_cores() -> int:
    """The cores other work leaves free: all of them minus the 1-minute load average (rounded), at least one.
    On a shared machine a thread per core starves: the threads wait on each other for cores they do not get."""
    cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        busy = 0
    return max(1, min(cores, cores - busy))
