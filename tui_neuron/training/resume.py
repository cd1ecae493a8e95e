"""The resume file: weights, optimizer moments, RNG states and the run's options, in one safetensors file.

It is read back only through `read_resume`, which validates every part before the
trainer uses it, and `check_same_run`, which names the option that differs when
`--resume` is given other model or data options than the saved run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
from msgspec import Meta, Struct, structs
from safetensors.torch import save as save_bytes

from ..checkpoint.validate import parse_json_limited, read_safetensors, validated
from ..errors import ParameterError, UserError
from ..model.tokenizer import Vocab

# options that change the model or the data stream: a resumed run must keep them
RUN_DEFINING = ("cell", "emb_dim", "hidden", "layers", "shared_embedding", "vocab_words", "max_position", "n_signals",
                "mode", "min_len", "max_len",
                "batch_size", "seed", "heldout_fraction")


class _StateSchema(Struct, kw_only=True):
    """The loop's counters as saved; strict so a damaged file cannot smuggle a string into a step count."""

    step: Annotated[int, Meta(ge=0)]
    elapsed: Annotated[float, Meta(ge=0)]
    lr: float
    best_acc: float
    best_loss: float
    best_step: Annotated[int, Meta(ge=0)]
    since_best: Annotated[int, Meta(ge=0)]
    history: Annotated[list[dict], Meta(max_length=10_000_000)]
    rng_state: list[dict] | dict
    stopped: str


@dataclass
class ResumeFile:
    model: Mapping[str, torch.Tensor]
    optimizer: dict  # torch optimizer state_dict
    torch_rng: list[torch.Tensor]  # per rank
    state: dict
    config: dict
    vocab: dict

    def to_bytes(self) -> bytes:
        tensors = {f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in self.model.items()}
        for idx, st in self.optimizer["state"].items():
            for k, v in st.items():
                v = torch.as_tensor(v).detach().cpu().clone()
                tensors[f"optim.{idx}.{k}"] = v.float().reshape(-1) if k == "step" else v.contiguous()
        for rank, rng in enumerate(self.torch_rng):
            tensors[f"rng.torch.{rank}"] = rng.clone()
        meta = {"state": json.dumps(self.state), "config": json.dumps(self.config, default=list),
                "vocab": json.dumps(self.vocab)}
        return save_bytes(tensors, metadata=meta)


def read_resume(path: Path) -> ResumeFile:
    if not path.exists():
        raise UserError(f"nothing to resume: {path} does not exist (train without resuming first)")
    meta, tensors = read_safetensors(path, what="resume file")
    try:
        state = parse_json_limited(meta["state"], "state")
        config = parse_json_limited(meta["config"], "config")
        vocab = parse_json_limited(meta["vocab"], "vocab")
        if not all(isinstance(x, dict) for x in (state, config, vocab)):
            raise ValueError("state, config and vocab must be JSON objects")
        state = structs.asdict(validated(_StateSchema, state, "state"))
        optimizer: dict[int, dict[str, torch.Tensor]] = {}
        for key, v in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                optimizer.setdefault(int(idx), {})[name] = v.reshape(()) if name == "step" else v
        torch_rng = [tensors[f"rng.torch.{r}"] for r in range(len(tensors)) if f"rng.torch.{r}" in tensors]
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    except (KeyError, ValueError, TypeError, UserError) as e:
        raise UserError(f"resume file {path} is damaged ({e}); delete it to start afresh (force)") from None
    return ResumeFile(model, optimizer, torch_rng, state, config, vocab)


def check_same_run(saved: ResumeFile, config: dict, vocab: dict, path: Path) -> None:
    """A resumed run must keep the options that define the model and the data; name the first that differs."""
    for key in RUN_DEFINING:
        saved_key = "vocab_size" if key == "vocab_words" and "vocab_size" in saved.config else key  # older files
        old, new = saved.config.get(saved_key), config.get(key)
        if saved_key in saved.config and old != new:
            raise ParameterError(key, f"{{param}} is {new} here but {old} in the run saved in {path}; "
                                      "use the saved value to resume, or train afresh (force)")
    saved_vocab = saved.vocab
    if "words" in saved_vocab:  # written before vocabularies carried their full id list
        try:
            saved_vocab = Vocab.standard(list(saved_vocab["words"]), int(saved_vocab["max_position"])).to_json()
        except (TypeError, ValueError):
            saved_vocab = {}
    if saved_vocab.get("itos") != vocab.get("itos") or saved_vocab.get("max_position") != vocab.get("max_position"):
        raise UserError(f"resume file {path} was made with another corpus or vocabulary; fix the options or "
                        "train afresh (force)")
    if not isinstance(saved.state.get("step"), int):
        raise UserError(f"resume file {path} is damaged (no step count); delete it to start afresh (force)")
