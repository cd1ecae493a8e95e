"""The token-positioning Seq2Seq: embedding(s), RNN encoder, RNN decoder, linear output.

No attention; the encoder's final state (and cell, for LSTM) of every layer goes to
the decoder's layer of the same depth unchanged, as in Lee et al. (arXiv 2303.15072).
Module names are the tensor names of the checkpoint format: `embedding` (shared) or
`src_embedding` + `tgt_embedding`, `encoder`, `decoder` (nn.GRU / nn.LSTM with
`num_layers`), `output`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..errors import UserError
from .config import ModelConfig
from .tokenizer import EOS_ID, PAD_ID

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class Dropout(nn.Dropout):
    """nn.Dropout whose CPU masks come from 16 random bits per element, four to a 64-bit draw.

    torch's CPU dropout draws one number per element and took a tenth of a training step; here the drop
    probability is rounded to a multiple of 1/65536 (0.3 becomes 0.300003). Other devices use torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        draws = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
        bits = draws.view(torch.int16)[:n].view(x.shape)
        keep = bits >= round(self.p * 65536) - 32768  # P(drop) = round(p * 65536) / 65536
        return x * keep * (1.0 / (1.0 - self.p))


class Attention(nn.Module):
    """The parameters of a declared attention (`Architecture.attention`); the stepper does the arithmetic.

    additive: score = v·tanh(query(q) + key(k)); general: score = query(q)·k; dot: q·k (no parameters). `out` is
    Luong's attentional layer, h~ = tanh(out([context; h]))."""

    def __init__(self, kind: str, hidden: int, attentional: bool):
        super().__init__()
        if kind == "additive":
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)
        elif kind == "general":
            self.query = nn.Linear(hidden, hidden, bias=False)
        if attentional:
            self.out = nn.Linear(2 * hidden, hidden)


def _widths(config: ModelConfig) -> dict[str, int]:
    """The width of each part a decoder step may concatenate."""
    h = config.hidden
    return {"embedding": config.emb_dim, "context": h, "feed": h, "h": h, "attentional": h}


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        arch = config.architecture
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        if config.shared_embedding:
            self.embedding = nn.Embedding(config.vocab_size, config.emb_dim, padding_idx=PAD_ID)
        else:
            self.src_embedding = nn.Embedding(config.source_vocab_size, config.emb_dim)
            self.tgt_embedding = nn.Embedding(config.vocab_size, config.emb_dim)
        self.encoder = rnn(config.emb_dim, config.encoder_hidden, num_layers=config.layers, batch_first=True,
                           bidirectional=arch.bidirectional)
        widths = _widths(config)
        self.decoder = rnn(sum(widths[p] for p in arch.rnn_input), config.hidden, num_layers=config.layers,
                           batch_first=True)
        if arch.bridge == "linear_tanh":
            self.bridge = nn.Linear(config.hidden, config.hidden)
        if arch.attention != "none" or arch.attentional:
            self.attention = Attention(arch.attention, config.hidden, arch.attentional)
        self.output = nn.Linear(sum(widths[p] for p in arch.output_input), config.vocab_size)
        self.dropout = Dropout(0.0)  # set by training; inactive in eval mode, which every analysis uses

    def require_plain(self, what: str) -> None:
        """Training and the gradient analyses run the plain shape's torch modules; an imported wiring is stepped
        by the stepper only."""
        if not self.config.architecture.is_plain:
            raise UserError(f"{what} needs the plain encoder-decoder shape; this model is "
                            f"{self.config.architecture.describe()} (the stepper, decode, probes and the explorer "
                            "run it)")

    @property
    def source_embedding(self) -> nn.Embedding:
        return self.embedding if self.config.shared_embedding else self.src_embedding

    @property
    def target_embedding(self) -> nn.Embedding:
        return self.embedding if self.config.shared_embedding else self.tgt_embedding

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        """src [B,S] right-padded -> final state [L,B,H] at each sequence's true end (packed, so padding is inert)."""
        packed = pack_padded_sequence(self.dropout(self.source_embedding(src)), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, state = self.encoder(packed)
        return state

    def decoder_outputs(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder outputs [B,L,H] for decoder inputs tgt_in [B,L] (before the output layer)."""
        self.require_plain("training")
        out, _ = self.decoder(self.dropout(self.target_embedding(tgt_in)), self.encode(src, src_len))
        return out

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B,L,V] for decoder inputs tgt_in [B,L]."""
        return self.output(self.dropout(self.decoder_outputs(src, src_len, tgt_in)))

    def loss(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor,
             label_smoothing: float = 0.0, pad_id: int = PAD_ID, control_mask: torch.Tensor | None = None,
             control_weight: float = 1.0) -> torch.Tensor:
        """Cross-entropy on every target token; with control_weight ≠ 1 the control tokens' terms weigh more
        (a weighted mean, so the loss stays on the same scale). Logits are computed only where the target is a
        token, not padding: the output layer is most of a step's cost, and padded rows add nothing to the loss."""
        real = tgt_out != pad_id
        logits = self.output(self.dropout(self.decoder_outputs(src, src_len, tgt_in)[real]))  # [N,V], N real tokens
        per_token = nn.functional.cross_entropy(logits, tgt_out[real], label_smoothing=label_smoothing,
                                                reduction="none")
        if control_mask is None or control_weight == 1.0:
            return per_token.mean()
        weight = torch.where(control_mask[real], control_weight, 1.0)
        return (per_token * weight).sum() / weight.sum()


def trim_at_eos(ids: list[int], eos_id: int = EOS_ID) -> list[int]:
    """Output ids up to (not including) the first <eos>."""
    return ids[: ids.index(eos_id)] if eos_id in ids else ids
