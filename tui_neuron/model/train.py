"""Training with held-out evaluation, early stopping, atomic checkpoints and exact resume.

The best checkpoint (by held-out positioning accuracy, then loss) is written to
`out`; the last state (weights, Adam moments, data RNG, history) to
`out.resume.safetensors` at every evaluation and on Ctrl-C, so `--resume`
continues where training stopped and, with a step budget, ends on the same
weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes

from ..errors import UserError
from .checkpoint import Checkpoint, atomic_write_bytes, save_checkpoint
from .data import Corpus, ExampleSource, SamplingConfig, collate
from .evaluate import evaluate
from .seq2seq import CELLS, ModelConfig, Seq2Seq
from .tokenizer import Vocab


@dataclass
class TrainConfig:
    corpus: tuple[str, ...]
    out: str
    cell: str = "gru"
    emb_dim: int = 128
    hidden: int = 256
    vocab_size: int = 2000
    max_position: int = 13
    n_signals: int = 1
    mode: str = "spans"
    min_len: int = 4
    max_len: int = 16
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    max_steps: int | None = None
    time_budget: float | None = None  # seconds
    eval_every: int = 250
    eval_examples: int = 1000
    patience: int = 12  # evaluations without improvement before stopping
    lr_patience: int = 4  # evaluations without improvement before halving the learning rate
    curriculum_steps: int = 1500  # short targets first
    curriculum_len: int = 6
    heldout_fraction: float = 0.05
    grad_clip: float = 1.0
    save_dtype: str = "float32"

    def check(self) -> None:
        if self.cell not in CELLS:
            raise UserError(f"--cell {self.cell!r}: use one of {', '.join(CELLS)}")
        if self.mode not in ("spans", "lines"):
            raise UserError(f"--mode {self.mode!r}: use spans or lines")
        if self.max_steps is None and self.time_budget is None:
            raise UserError("give a budget: --steps N or --minutes M")
        if not 1 <= self.n_signals <= self.max_position:
            raise UserError(f"--signals {self.n_signals}: must be between 1 and --max-position")
        if self.min_len > self.max_len or self.min_len < 1:
            raise UserError("--min-len must be between 1 and --max-len")
        if self.max_position > self.max_len:
            raise UserError(f"--max-position {self.max_position} exceeds --max-len {self.max_len}")
        for name in ("emb_dim", "hidden", "vocab_size", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be positive")


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + ".resume.safetensors")


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
    rng_state: dict | None = None
    stopped: str = ""


ProgressFn = Callable[[dict], None]


class Trainer:
    def __init__(self, cfg: TrainConfig, progress: ProgressFn | None = None):
        cfg.check()
        self.cfg = cfg
        self.progress = progress or (lambda info: None)
        self.corpus = Corpus.load(cfg.corpus, cfg.heldout_fraction)
        train_lines = self.corpus.lines("train")
        self.vocab = Vocab.build(train_lines, cfg.vocab_size, cfg.max_position)
        sampling = SamplingConfig(cfg.mode, cfg.min_len, cfg.max_len, cfg.n_signals)
        self.train_source = ExampleSource(self.vocab, train_lines, sampling)
        heldout = ExampleSource(self.vocab, self.corpus.lines("heldout"), sampling)
        self.eval_set = heldout.sample_many(cfg.eval_examples, seed=1234, max_position=cfg.max_position)
        self.model_config = ModelConfig(len(self.vocab), cfg.cell, cfg.emb_dim, cfg.hidden, cfg.max_position,
                                        cfg.n_signals, cfg.max_len)
        torch.manual_seed(cfg.seed)
        self.model = Seq2Seq(self.model_config)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(cfg.seed)
        self.state = TrainState(lr=cfg.lr, history=[])

    # ------------------------------------------------------------------ persistence

    def heldout_record(self) -> dict:
        rec = self.corpus.heldout_record()
        rec.update(mode=self.cfg.mode, min_len=self.cfg.min_len, max_len=self.cfg.max_len,
                   n_signals=self.cfg.n_signals, heldout_fraction=self.cfg.heldout_fraction)
        return rec

    def training_record(self) -> dict:
        s = self.state
        last = s.history[-1] if s.history else {}
        return {
            "steps": s.step, "seconds": round(s.elapsed, 1), "best_step": s.best_step,
            "heldout_accuracy": s.best_acc, "heldout_loss": s.best_loss,
            "last_eval": last, "corpus_sha256": self.corpus.sha256(), "stopped": s.stopped,
            "args": {k: v for k, v in asdict(self.cfg).items() if k not in ("out",)},
            "history": s.history,
        }

    def save_best(self) -> None:
        dtype = torch.float16 if self.cfg.save_dtype == "float16" else torch.float32
        ckpt = Checkpoint(self.model, self.vocab, self.heldout_record(), self.training_record())
        save_checkpoint(ckpt, self.cfg.out, dtype)

    def save_resume(self) -> None:
        tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}
        opt_state = self.opt.state_dict()
        for idx, st in opt_state["state"].items():
            for k, v in st.items():
                v = torch.as_tensor(v).detach().clone()
                tensors[f"optim.{idx}.{k}"] = v.float().reshape(-1) if k == "step" else v.contiguous()
        self.state.rng_state = self.rng.bit_generator.state
        meta = {"state": json.dumps(asdict(self.state)), "config": json.dumps(asdict(self.cfg), default=list),
                "vocab": json.dumps(self.vocab.to_json())}
        atomic_write_bytes(resume_path(self.cfg.out), save_bytes(tensors, metadata=meta))

    def load_resume(self) -> None:
        path = resume_path(self.cfg.out)
        if not path.exists():
            raise UserError(f"nothing to resume: {path} does not exist (train without --resume first)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata()
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - any read failure is a corrupt resume file
            raise UserError(f"resume file {path} is unreadable ({e}); delete it to start afresh") from None
        if json.loads(meta["vocab"]) != self.vocab.to_json():
            raise UserError(f"resume file {path} was made with another corpus or vocabulary; delete it or fix the options")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_sd = self.opt.state_dict()
        for key, v in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                st = opt_sd["state"].setdefault(int(idx), {})
                st[name] = v.reshape(()) if name == "step" else v
        st = json.loads(meta["state"])
        self.state = TrainState(**st)
        for g in opt_sd["param_groups"]:
            g["lr"] = self.state.lr
        self.opt.load_state_dict(opt_sd)
        self.rng.bit_generator.state = self.state.rng_state

    # ------------------------------------------------------------------ loop

    def evaluate(self) -> dict:
        self.model.eval()
        report = evaluate(self.model, self.vocab, self.eval_set)
        self.model.train()
        return {"step": self.state.step, "seconds": round(self.state.elapsed, 1), "heldout_loss": report.loss,
                "heldout_accuracy": report.overall.value,
                "per_position": {k: round(v.value, 4) for k, v in sorted(report.per_position.items())}}

    def _after_eval(self, result: dict) -> bool:
        """Record, keep the best, adapt the learning rate; True when training should stop."""
        s = self.state
        result["lr"] = s.lr
        s.history.append(result)
        acc, loss = result["heldout_accuracy"], result["heldout_loss"]
        if acc > s.best_acc or (acc == s.best_acc and loss < s.best_loss):
            s.best_acc, s.best_loss, s.best_step, s.since_best = acc, loss, s.step, 0
            self.save_best()
        else:
            s.since_best += 1
            if s.since_best % self.cfg.lr_patience == 0:
                s.lr /= 2
                for g in self.opt.param_groups:
                    g["lr"] = s.lr
        if s.since_best >= self.cfg.patience:
            s.stopped = f"early stop: no held-out improvement in {self.cfg.patience} evaluations"
            return True
        return False

    def train_step(self, batch) -> torch.Tensor:
        """One teacher-forced update: cross-entropy, backward, clipping, Adam."""
        loss = self.model.loss(batch.src, batch.src_len, batch.tgt_in, batch.tgt_out)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return loss.detach()

    def run(self, resume: bool = False, reset_lr: bool = False) -> TrainState:
        cfg, s = self.cfg, self.state
        if resume:
            self.load_resume()
            s = self.state
            if reset_lr:  # a warm restart: the given learning rate, and patience counted afresh
                s.lr, s.since_best, s.stopped = cfg.lr, 0, ""
                for g in self.opt.param_groups:
                    g["lr"] = cfg.lr
        self.model.train()
        t_start = time.monotonic() - s.elapsed
        tokens_seen, tok_t0 = 0, time.monotonic()
        try:
            while True:
                if cfg.max_steps is not None and s.step >= cfg.max_steps:
                    s.stopped = s.stopped or "step budget reached"
                    break
                if cfg.time_budget is not None and s.elapsed >= cfg.time_budget:
                    s.stopped = s.stopped or "time budget reached"
                    break
                cap = cfg.curriculum_len if s.step < cfg.curriculum_steps else None
                batch = collate([self.train_source.sample(self.rng, cfg.max_position, cap)
                                 for _ in range(cfg.batch_size)], self.vocab)
                loss = self.train_step(batch)
                s.step += 1
                s.elapsed = time.monotonic() - t_start
                tokens_seen += batch.n_target_tokens + int(batch.src_len.sum())
                info = {"step": s.step, "loss": loss.item(), "elapsed": s.elapsed,
                        "tokens_per_s": tokens_seen / max(time.monotonic() - tok_t0, 1e-9),
                        "best_acc": s.best_acc}
                if s.step % cfg.eval_every == 0:
                    result = self.evaluate()
                    info["eval"] = result
                    stop = self._after_eval(result)
                    self.save_resume()
                    if stop:
                        break
                self.progress(info)
        except KeyboardInterrupt:
            s.stopped = "interrupted (resume with --resume)"
            self.save_resume()
            raise
        if not Path(cfg.out).exists():  # no evaluation yet: keep what we have (later evals are unaffected)
            self._after_eval(self.evaluate())
        self.save_resume()
        self.save_best_record_only()
        return s

    def save_best_record_only(self) -> None:
        """Refresh the training record (final step, time, why it stopped) in the best checkpoint."""
        from .checkpoint import load_checkpoint

        best = load_checkpoint(self.cfg.out)
        best.training = self.training_record()
        save_checkpoint(best, self.cfg.out, torch.float16 if self.cfg.save_dtype == "float16" else torch.float32)


def train(cfg: TrainConfig, resume: bool = False, progress: ProgressFn | None = None) -> TrainState:
    return Trainer(cfg, progress).run(resume)


__all__ = ["TrainConfig", "Trainer", "train", "resume_path"]
