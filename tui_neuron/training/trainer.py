"""Training with held-out evaluation, a regularised default recipe, atomic checkpoints and exact resume.

The best checkpoint (by held-out positioning accuracy, then loss) is written to
`out`; the last state (weights, optimizer moments, every RNG, history) to
`out.resume.safetensors` at every evaluation and when a stop is requested, so
`--resume` continues where training stopped and, with a step budget, ends on
the same weights as an uninterrupted run. A SIGINT/SIGTERM only sets a flag; the
loop stops after the step in progress, so the saved state is a completed step's.

The default recipe does not memorise a small corpus: dropout on embeddings and
decoder outputs, decoder-input word dropout (the positioning mechanism barely
uses x_t), AdamW weight decay, and warmup + cosine decay over the budget.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint.format import Checkpoint, atomic_write_bytes, remove_stale_temps, save_checkpoint
from ..checkpoint.validate import tensors_digest
from ..errors import ParameterError, UserError
from ..model.examples import Example
from ..model.seq2seq import Seq2Seq
from ..model.tokenizer import Vocab
from . import distributed as dist
from .config import SCHEDULES, TrainConfig, TrainState, budget_fraction, check_output, resume_path, scheduled_lr
from .corpus import Corpus, ExampleSource, TrainBatch, collate
from .evaluate import evaluate
from .resume import ResumeFile, check_same_run, read_resume

ProgressFn = Callable[[dict], None]
INTERRUPTED = "interrupted (resume with --resume)"  # the stop reason a signal leaves, until the run is resumed


@dataclass
class TrainingData:
    """What a run trains and evaluates on, built from the corpus before the trainer is (a benchmark brings its own)."""

    vocab: Vocab
    train_source: ExampleSource | None
    eval_set: list[Example]
    corpus: Corpus | None = None

    @classmethod
    def load(cls, cfg: TrainConfig, corpus: Corpus | None = None) -> TrainingData:
        corpus = corpus or Corpus.load(cfg.corpus, cfg.heldout_fraction)
        train_lines = corpus.lines("train")
        vocab = Vocab.build(train_lines, cfg.vocab_words, cfg.model.max_position)
        heldout = ExampleSource(vocab, corpus.lines("heldout"), cfg.sampling)
        return cls(vocab, ExampleSource(vocab, train_lines, cfg.sampling),
                   heldout.sample_many(cfg.eval_examples, seed=1234, max_position=cfg.model.max_position), corpus)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: TrainingData, progress: ProgressFn | None = None):
        cfg.check()
        self.world = dist.world_from_env()
        cfg.world_size = self.world.size
        self.cfg = cfg
        self.device = dist.resolve_device(cfg.device, self.world.local_rank)
        self.progress = progress or (lambda info: None)
        self.data, self.vocab, self.eval_set = data, data.vocab, data.eval_set
        self.model_config = cfg.model_config(len(self.vocab))
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.model = Seq2Seq(self.model_config).to(self.device)
        if cfg.init_from:
            self._start_from(Path(cfg.init_from))
        self.model.dropout.p = cfg.dropout
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        torch.manual_seed(cfg.seed + 7919 * self.world.rank)  # each rank its own dropout stream
        self.rng = np.random.default_rng(cfg.seed if self.world.rank == 0 else [cfg.seed, self.world.rank])
        self.state = TrainState(lr=cfg.lr, history=[])
        self._stop_requested = False
        self._rank_digests: list[str] = []  # each rank's final weights (data parallel keeps them identical)

    @property
    def corpus(self) -> Corpus:
        if self.data.corpus is None:
            raise UserError("this trainer was given no corpus: it can take steps, not save checkpoints")
        return self.data.corpus

    def request_stop(self) -> None:
        """Ask the loop to stop after the step in progress (safe to call from a signal handler)."""
        self._stop_requested = True

    # ------------------------------------------------------------------ persistence

    def heldout_record(self) -> dict:
        rec = self.corpus.heldout_record(relative_to=Path(self.cfg.out).parent)
        rec.update(asdict(self.cfg.sampling), heldout_fraction=self.cfg.heldout_fraction)
        return rec

    def training_record(self) -> dict:
        s = self.state
        last = s.history[-1] if s.history else {}
        return {
            "steps": s.step, "seconds": round(s.elapsed, 1), "best_step": s.best_step,
            "heldout_accuracy": s.best_acc, "heldout_loss": s.best_loss,
            "last_eval": last, "corpus_sha256": self.corpus.sha256(), "stopped": s.stopped,
            "world_size": self.world.size, "device": self.device.type,
            **({"rank_weight_sha256": self._rank_digests} if self._rank_digests else {}),
            "args": {k: v for k, v in self.cfg.options().items() if k not in ("out",)},
            "history": s.history,
        }

    def _dtype(self) -> torch.dtype:
        return torch.float16 if self.cfg.save_dtype == "float16" else torch.float32

    def _cpu_model(self) -> Seq2Seq:
        if self.device.type == "cpu":
            return self.model
        model = Seq2Seq(self.model_config)
        model.load_state_dict({k: v.cpu() for k, v in self.model.state_dict().items()})
        return model

    def save_best(self) -> None:
        ckpt = Checkpoint(self._cpu_model(), self.vocab, self.heldout_record(), self.training_record())
        save_checkpoint(ckpt, self.cfg.out, self._dtype())

    def save_resume(self) -> None:
        """Every rank's RNG states are gathered; rank 0 writes the file."""
        np_states = dist.gather(self.rng.bit_generator.state, self.world)
        torch_states = dist.gather(torch.get_rng_state(), self.world)
        if not self.world.is_main:
            return
        self.state.rng_state = np_states
        resume = ResumeFile(self.model.state_dict(), self.opt.state_dict(), torch_states,
                            asdict(self.state), self.cfg.options(), self.vocab.to_json())
        atomic_write_bytes(resume_path(self.cfg.out), resume.to_bytes())

    def _start_from(self, path: Path) -> None:
        """Warm start: a longer run, or another recipe, continues from a checkpoint's weights with a fresh
        optimizer and schedule. Only a checkpoint of the same shape over the same vocabulary fits."""
        from ..checkpoint.format import load_checkpoint

        ckpt = load_checkpoint(path)
        if ckpt.vocab.to_json() != self.vocab.to_json():
            raise ParameterError("init_from", f"{{param}} {path}: its vocabulary differs from the one built from "
                                              "this corpus; give the corpus and vocabulary options it was trained with")
        if ckpt.config != self.model_config:
            differs = [k for k in asdict(self.model_config) if getattr(ckpt.config, k) != getattr(self.model_config, k)]
            raise ParameterError("init_from", f"{{param}} {path}: its {', '.join(differs)} differ from this run's; "
                                              "give the model options it was trained with")
        self.model.load_state_dict({k: v.float().to(self.device) for k, v in ckpt.model.state_dict().items()})

    def load_resume(self) -> None:
        path = resume_path(self.cfg.out)
        saved = read_resume(path)
        check_same_run(saved, self.cfg.options(), self.vocab.to_json(), path)
        try:
            self._restore(saved, path)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
            raise UserError(f"resume file {path} does not fit this run ({reason}); delete it or train afresh "
                            "(force)") from None

    def _restore(self, saved: ResumeFile, path: Path) -> None:
        self.model.load_state_dict({k: v.to(self.device) for k, v in saved.model.items()})
        opt_sd: dict[str, Any] = self.opt.state_dict()
        for idx, st in saved.optimizer.items():
            opt_sd["state"][idx] = {k: (v if k == "step" else v.to(self.device)) for k, v in st.items()}
        known = TrainState.__dataclass_fields__
        self.state = TrainState(**{k: v for k, v in saved.state.items() if k in known})
        for g in opt_sd["param_groups"]:
            g["lr"] = self.state.lr
        self.opt.load_state_dict(opt_sd)
        np_states = self.state.rng_state if isinstance(self.state.rng_state, list) else [self.state.rng_state]
        if len(np_states) != self.world.size:
            raise UserError(f"{path} was saved by {len(np_states)} process(es); resume it with the same number "
                            f"(now {self.world.size})")
        self.rng.bit_generator.state = np_states[self.world.rank]  # type: ignore[assignment]
        if saved.torch_rng:
            torch.set_rng_state(saved.torch_rng[self.world.rank])

    # ------------------------------------------------------------------ loop

    def evaluate(self) -> dict:
        self.model.eval()
        report = evaluate(self._cpu_model(), self.vocab, self.eval_set)
        self.model.train()
        return {"step": self.state.step, "seconds": round(self.state.elapsed, 1), "heldout_loss": report.loss,
                "heldout_accuracy": report.overall.value,
                "per_position": {k: round(v.value, 4) for k, v in sorted(report.per_position.items())}}

    def _after_eval(self, result: dict) -> bool:
        """Record, keep the best, adapt the learning rate (plateau schedule); True when training should stop."""
        s = self.state
        result["lr"] = s.lr
        assert s.history is not None  # every TrainState the trainer makes has one
        s.history.append(result)
        acc, loss = result["heldout_accuracy"], result["heldout_loss"]
        if acc > s.best_acc or (acc == s.best_acc and loss < s.best_loss):
            s.best_acc, s.best_loss, s.best_step, s.since_best = acc, loss, s.step, 0
            self.save_best()
        else:
            s.since_best += 1
            if self.cfg.schedule == "plateau" and s.since_best % self.cfg.lr_patience == 0:
                s.lr /= 2
        if s.since_best >= self.cfg.patience:
            s.stopped = f"early stop: no held-out improvement in {self.cfg.patience} evaluations"
            return True
        return False

    def draw_batch(self) -> TrainBatch:
        """One batch from this rank's stream; word dropout is drawn from the same generator (resumable)."""
        cfg = self.cfg
        cap = cfg.curriculum_len if self.state.step < cfg.curriculum_steps else None
        assert self.data.train_source is not None, "this trainer was given no training lines"
        batch = collate([self.data.train_source.sample(self.rng, cfg.model.max_position, cap)
                         for _ in range(cfg.batch_size)], self.vocab)
        if cfg.word_dropout > 0:
            drop = torch.from_numpy(self.rng.random(tuple(batch.tgt_in.shape)) < cfg.word_dropout)
            drop[:, 0] = False  # keep <bos>
            batch.tgt_in = batch.tgt_in.masked_fill(drop & (batch.tgt_in != self.vocab.pad_id), self.vocab.unk_id)
        return batch

    def train_step(self, batch: TrainBatch) -> torch.Tensor:
        """One teacher-forced update: cross-entropy, backward, gradient averaging across ranks, clipping, AdamW."""
        d = self.device
        mask = batch.control_mask.to(d) if batch.control_mask is not None else None
        loss = self.model.loss(batch.src.to(d), batch.src_len, batch.tgt_in.to(d), batch.tgt_out.to(d),
                               self.cfg.label_smoothing, self.vocab.pad_id, mask, self.cfg.control_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        dist.average_gradients(list(self.model.parameters()), self.world)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return loss.detach()

    def run(self, resume: bool = False, reset_lr: bool = False) -> TrainState:
        with _stop_on_signals(self):
            return self._run(resume, reset_lr)

    def _run(self, resume: bool, reset_lr: bool) -> TrainState:
        cfg = self.cfg
        for path in (Path(cfg.out), resume_path(cfg.out)):
            remove_stale_temps(path)
        if resume:
            self.load_resume()
            if self.state.stopped == INTERRUPTED:  # this run carries on, so it ends for its own reason
                self.state.stopped = ""
            if reset_lr:  # a warm restart: the given learning rate, and patience counted afresh
                self.state.lr, self.state.since_best, self.state.stopped = cfg.lr, 0, ""
        s = self.state
        self.model.train()
        t_start = time.monotonic() - s.elapsed
        tokens_seen, tok_t0 = 0, time.monotonic()
        while not self._budget_spent():
            lr = s.lr = scheduled_lr(self.cfg, s)
            for g in self.opt.param_groups:
                g["lr"] = lr
            batch = self.draw_batch()
            loss = self.train_step(batch).item()
            if not math.isfinite(loss):
                raise UserError(f"the training loss became {loss} at step {s.step + 1}; lower lr (now {cfg.lr:g}) "
                                f"— the best checkpoint so far is kept")
            s.step += 1
            s.elapsed = time.monotonic() - t_start
            tokens_seen += batch.n_target_tokens + int(batch.src_len.sum())
            info: dict[str, Any] = {"step": s.step, "loss": loss, "elapsed": s.elapsed, "lr": lr,
                                    "fraction": budget_fraction(self.cfg, s),
                    "tokens_per_s": tokens_seen * self.world.size / max(time.monotonic() - tok_t0, 1e-9),
                    "best_acc": s.best_acc}
            if s.step % cfg.eval_every == 0:
                stop = False
                if self.world.is_main:
                    info["eval"] = result = self.evaluate()
                    stop = self._after_eval(result)
                stop = bool(dist.broadcast(stop, self.world))
                self.save_resume()
                if stop:
                    s.stopped = s.stopped or "early stop"
                    break
            if self.world.is_main:
                try:
                    self.progress(info)
                except KeyboardInterrupt:  # raised after a completed step: stop there, resumably
                    self._stop_requested = True
        if self.world.is_main and not Path(cfg.out).exists():  # no evaluation yet: keep what we have
            self._after_eval(self.evaluate())
        self.save_resume()
        if self.world.distributed:
            self._rank_digests = dist.gather(tensors_digest(self.model.state_dict()), self.world)
        if self.world.is_main:
            self.save_best_record_only()
        return s

    def _budget_spent(self) -> bool:
        """True when the step or time budget is spent (on any rank); a stop asked for by a signal saves the
        state of the completed step and raises KeyboardInterrupt."""
        cfg, s = self.cfg, self.state
        over = (cfg.max_steps is not None and s.step >= cfg.max_steps) or (
            cfg.time_budget is not None and s.elapsed >= cfg.time_budget)
        if not dist.any_rank(over or self._stop_requested, self.world, self.device):
            return False
        if self._stop_requested:
            s.stopped = INTERRUPTED
            self.save_resume()
            raise KeyboardInterrupt
        s.stopped = s.stopped or ("step budget reached" if cfg.max_steps and s.step >= cfg.max_steps
                                  else "time budget reached")
        return True

    def save_best_record_only(self) -> None:
        """Refresh the training record (final step, time, why it stopped) in the best checkpoint."""
        from ..checkpoint.format import load_checkpoint

        best = load_checkpoint(self.cfg.out)
        best.training = self.training_record()
        save_checkpoint(best, self.cfg.out, self._dtype())


class _stop_on_signals:
    """While training runs in the main thread, SIGINT/SIGTERM request a stop after the current step."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.saved: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, lambda signum, frame: self.trainer.request_stop())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def train(cfg: TrainConfig, resume: bool = False, progress: ProgressFn | None = None) -> TrainState:
    return Trainer(cfg, TrainingData.load(cfg), progress).run(resume)


__all__ = ["TrainConfig", "TrainingData", "Trainer", "train", "resume_path", "check_output", "SCHEDULES"]
