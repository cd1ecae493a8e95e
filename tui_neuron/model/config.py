"""What a model is: its cell, sizes, positions and layers (no torch here, so the CLI can describe one quickly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

CELLS = ("gru", "lstm")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    cell: str = "gru"
    emb_dim: int = 128
    hidden: int = 256
    max_position: int = 13
    n_signals: int = 1
    max_len: int = 16  # longest source span / target the model was trained on
    layers: int = 1
    shared_embedding: bool = True  # one embedding for source and target, or src_embedding + tgt_embedding

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return ("r", "z", "n") if self.cell == "gru" else ("i", "f", "g", "o")
