"""The token-positioning Seq2Seq: embedding, RNN encoder, RNN decoder, linear output.

No attention; the encoder's final state (and cell, for LSTM) goes to the decoder
unchanged, as in Lee et al. (arXiv 2303.15072). Module names match the tensor
names of the checkpoint format: embedding, encoder, decoder, output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .tokenizer import BOS_ID, EOS_ID, PAD_ID

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

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return ("r", "z", "n") if self.cell == "gru" else ("i", "f", "g", "o")


State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.embedding = nn.Embedding(config.vocab_size, config.emb_dim, padding_idx=PAD_ID)
        self.encoder = rnn(config.emb_dim, config.hidden, batch_first=True)
        self.decoder = rnn(config.emb_dim, config.hidden, batch_first=True)
        self.output = nn.Linear(config.hidden, config.vocab_size)
        self.dropout = nn.Dropout(0.0)  # set by training; inactive in eval mode, which every analysis uses


    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        """src [B,S] right-padded -> final state [1,B,H] at each sequence's true end (packed, so padding is inert)."""
        packed = pack_padded_sequence(self.dropout(self.embedding(src)), src_len.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.encoder(packed)
        return state

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B,L,V] for decoder inputs tgt_in [B,L]."""
        state = self.encode(src, src_len)
        out, _ = self.decoder(self.dropout(self.embedding(tgt_in)), state)  # [B,L,H]
        return self.output(self.dropout(out))

    def loss(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy on every target token (no extra loss on the control token)."""
        logits = self(src, src_len, tgt_in)
        return nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID,
                                           label_smoothing=label_smoothing)

    @torch.no_grad()
    def greedy_reference(self, src: torch.Tensor, src_len: torch.Tensor, max_steps: int) -> torch.Tensor:
        """Greedy decode with torch's own modules, one step at a time: the reference the stepper must match."""
        state = self.encode(src, src_len)
        tok = torch.full((src.shape[0], 1), BOS_ID, dtype=torch.long)
        outs = []
        for _ in range(max_steps):
            out, state = self.decoder(self.embedding(tok), state)
            tok = self.output(out).argmax(-1)
            outs.append(tok)
        return torch.cat(outs, 1)  # [B, max_steps]


def trim_at_eos(ids: list[int]) -> list[int]:
    """Output ids up to (not including) the first <eos>."""
    return ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids
