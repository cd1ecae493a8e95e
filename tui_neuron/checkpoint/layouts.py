"""Known state-dict layouts: recognised by their key names, mapped to tui-neuron's names, wiring read off shapes.

Each layout is one function from the user's keys to a `Detected`: the tensors under tui-neuron's names (see
docs/checkpoint-format.md), the decoder's `Architecture`, what was found (said to the user) and every problem
(all reported at once). Layouts:
- `tui-neuron`: the plain shape's own names (`embedding`/`src_embedding`+`tgt_embedding`, `encoder`, `decoder`,
  `output`);
- `pytorch-tutorial`: PyTorch's "NLP From Scratch: translation" EncoderRNN + DecoderRNN (relu on the decoder's
  embedded input) or AttnDecoderRNN (Bahdanau attention on the previous state), two modules `embedding`/`gru`/`out`;
- `pytorch-seq2seq`: the tutorial series' `encoder.rnn`/`decoder.rnn`/`decoder.fc_out` (notebook 1), its
  context-fed decoder (notebook 2) and its Bahdanau decoder with a bidirectional encoder and `encoder.fc` bridge
  (notebook 3);
- `opennmt-py`: OpenNMT-py's RNN encoder (`encoder.rnn`, brnn or not) and input-feeding decoder
  (`decoder.rnn.layers.{i}` cells, Luong `decoder.attn` dot/general, `generator.0`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model.config import Architecture

RNN_PARAMS = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


@dataclass
class Detected:
    layout: str
    state: dict[str, Tensor]
    arch: Architecture = Architecture()
    found: list[str] = field(default_factory=list)  # what the user should know was read or assumed
    problems: list[str] = field(default_factory=list)
    tokenizer: tuple[str, bool] = ("tui-neuron-words", True)  # the layout's usual split rule and lowercasing


def renamed(state: dict[str, Tensor], pairs: Sequence[tuple[str, str]]) -> dict[str, Tensor]:
    """Each key under the first prefix `old` of `pairs` that it starts with, moved to `new`; others kept (the
    layouts' maps and the user's --rename alike)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for old, new in pairs:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def _in_width(state: dict[str, Tensor], key: str) -> int:
    return int(state[key].shape[-1]) if key in state and state[key].dim() == 2 else 0


def _bidirectional(state: dict[str, Tensor]) -> bool:
    return any(k.startswith("encoder.") and k.endswith("_reverse") for k in state)


def plain(state: dict[str, Tensor]) -> Detected | None:
    if "encoder.weight_ih_l0" not in state and "output.weight" not in state:
        return None
    bi = _bidirectional(state)
    return Detected("tui-neuron", state, Architecture(bidirectional=bi, bridge="linear_tanh" if "bridge.weight" in
                                                      state else ("concat" if bi else "none")))


def pytorch_tutorial(state: dict[str, Tensor]) -> Detected | None:
    rnn = next((m for m in ("gru", "lstm", "rnn") if f"encoder.{m}.weight_ih_l0" in state), None)
    if rnn is None or "encoder.embedding.weight" not in state or "decoder.out.weight" not in state:
        return None
    d = Detected("pytorch-tutorial", renamed(state, [
        ("encoder.embedding.", "src_embedding."), (f"encoder.{rnn}.", "encoder."),
        ("decoder.embedding.", "tgt_embedding."), (f"decoder.{rnn}.", "decoder."), ("decoder.out.", "output."),
        ("decoder.attention.Wa.", "attention.query."), ("decoder.attention.Ua.", "attention.key."),
        ("decoder.attention.Va.", "attention.v.")]), tokenizer=("whitespace", True))
    if "attention.query.weight" in d.state:
        d.state.pop("attention.v.bias", None)  # one number added to every score: the softmax does not see it
        d.arch = Architecture(attention="additive", query="previous", rnn_input=("embedding", "context"))
        d.found.append("AttnDecoderRNN: Bahdanau attention on the state before each step, the GRU reads "
                       "(embedding, context)")
    else:
        d.arch = Architecture(embed_activation="relu")
        d.found.append("DecoderRNN: relu on the decoder's embedded input, as its forward_step applies "
                       "(--embed-activation none if yours does not)")
    return d


def pytorch_seq2seq(state: dict[str, Tensor]) -> Detected | None:
    if "encoder.rnn.weight_ih_l0" not in state or "decoder.fc_out.weight" not in state:
        return None
    s = renamed(state, [("encoder.embedding.", "src_embedding."), ("encoder.rnn.", "encoder."),
                       ("encoder.fc.", "bridge."), ("decoder.embedding.", "tgt_embedding."),
                       ("decoder.rnn.", "decoder."), ("decoder.fc_out.", "output.")])
    d = Detected("pytorch-seq2seq", s)
    emb = _in_width(s, "tgt_embedding.weight")
    hid = int(s["decoder.weight_hh_l0"].shape[-1]) if "decoder.weight_hh_l0" in s else 0
    if "decoder.attention.attn.weight" in s:  # notebook 3: attn(cat(hidden, encoder_outputs)), v without bias
        w = s.pop("decoder.attention.attn.weight")
        s["attention.query.weight"], s["attention.key.weight"] = w[:, :hid].clone(), w[:, hid:].clone()
        s["attention.query.bias"] = s.pop("decoder.attention.attn.bias", torch.zeros(w.shape[0]))
        s["attention.key.bias"] = torch.zeros(w.shape[0])
        if "decoder.attention.v.weight" in s:
            s["attention.v.weight"] = s.pop("decoder.attention.v.weight")
        bi = _bidirectional(s)
        d.arch = Architecture(bidirectional=bi, bridge="linear_tanh" if "bridge.weight" in s else
                              ("concat" if bi else "none"), attention="additive", query="previous",
                              rnn_input=("embedding", "context"), output_input=("h", "context", "embedding"))
        d.found.append("notebook 3: Bahdanau attention on the state before each step, the GRU reads "
                       "(embedding, context), fc_out reads (h, context, embedding)")
        return d
    if _in_width(s, "decoder.weight_ih_l0") == emb + hid and emb:  # notebook 2: the context fed to every step
        d.arch = Architecture(rnn_input=("embedding", "context"), output_input=("embedding", "h", "context"))
        d.found.append("notebook 2: the encoder's final state is a context read at every step; the GRU reads "
                       "(embedding, context), fc_out reads (embedding, h, context)")
    elif _bidirectional(s):
        d.arch = Architecture(bidirectional=True, bridge="linear_tanh" if "bridge.weight" in s else "concat")
    else:
        d.found.append("notebook 1: the plain encoder-decoder, the encoder's final states start the decoder")
    return d


def opennmt_py(state: dict[str, Tensor]) -> Detected | None:
    lut = "embeddings.make_embedding.emb_luts.0.weight"
    if f"encoder.{lut}" not in state:
        return None
    s = renamed(state, [(f"encoder.{lut}", "src_embedding.weight"), (f"decoder.{lut}", "tgt_embedding.weight"),
                       ("encoder.rnn.", "encoder."), ("decoder.attn.linear_in.", "attention.query."),
                       ("decoder.attn.linear_query.", "attention.query."),
                       ("decoder.attn.linear_context.", "attention.key."), ("decoder.attn.v.", "attention.v."),
                       ("decoder.attn.linear_out.", "attention.out."), ("generator.0.", "output.")])
    mlp = "attention.key.weight" in s  # mlp: v·tanh(linear_query(h) + linear_context(k)); linear_out, no tanh
    if mlp:
        s.setdefault("attention.key.bias", torch.zeros(s["attention.key.weight"].shape[0]))
    for key in list(s):
        m = re.fullmatch(r"decoder\.rnn\.layers\.(\d+)\.(weight_ih|weight_hh|bias_ih|bias_hh)", key)
        if m:
            s[f"decoder.{m.group(2)}_l{m.group(1)}"] = s.pop(key)
        elif key.startswith("decoder.rnn."):
            s["decoder." + key[len("decoder.rnn."):]] = s.pop(key)
    d = Detected("opennmt-py", s, tokenizer=("whitespace", False))
    if "attention.out.weight" in s and "attention.out.bias" not in s:
        s["attention.out.bias"] = torch.zeros(s["attention.out.weight"].shape[0])  # general/dot: no bias
    if any(k.startswith("decoder.attn.") for k in s):
        d.problems.append(f"unknown attention weights {sorted(k for k in s if k.startswith('decoder.attn.'))[0]} "
                          "(coverage attention is not supported; dot, general and mlp are)")
    if any(k.startswith("encoder.bridge.") for k in s):
        d.problems.append("OpenNMT-py's --bridge (a linear + relu on the encoder's final states) is not supported yet")
    hid = int(s["decoder.weight_hh_l0"].shape[-1]) if "decoder.weight_hh_l0" in s else 0
    feed = _in_width(s, "decoder.weight_ih_l0") == _in_width(s, "tgt_embedding.weight") + hid
    bi = _bidirectional(s)
    kind = "additive" if mlp else "general" if "attention.query.weight" in s else "dot"
    d.arch = Architecture(bidirectional=bi, bridge="concat" if bi else "none", attention=kind, query="current",
                          rnn_input=("embedding", "feed") if feed else ("embedding",), attentional=True,
                          output_input=("attentional",), attentional_activation="none" if mlp else "tanh")
    d.found.append(f"{'mlp' if mlp else kind} global attention on the state after each step, attentional vector "
                   f"{'linear_out(context, h)' if mlp else 'tanh(linear_out(context, h))'}"
                   f"{', input feeding' if feed else ''}"
                   f"{', brnn encoder (directions joined)' if bi else ''}")
    return d


LAYOUTS: tuple[Callable[[dict[str, Tensor]], Detected | None], ...] = (
    pytorch_tutorial, pytorch_seq2seq, opennmt_py, plain)


def detect(state: dict[str, Tensor]) -> Detected | None:
    """The first layout whose key names match (None: none does)."""
    for layout in LAYOUTS:
        found = layout(state)
        if found is not None:
            return found
    return None


def strip_common_prefix(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Keys without the dotted prefix they all share (`model.`, `module.`, `seq2seq.`), and that prefix."""
    keys = [k.split(".") for k in state]
    common = 0
    while keys and all(len(k) > common + 1 and k[common] == keys[0][common] for k in keys):
        common += 1
    prefix = ".".join(keys[0][:common]) + "." if common else ""
    return {k[len(prefix):]: v for k, v in state.items()}, prefix
