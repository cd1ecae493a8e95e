"""What a model is: its cell, sizes, positions, layers and wiring (no torch here, so the CLI can describe one
quickly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CELLS = ("gru", "lstm")
ATTENTIONS = ("none", "additive", "dot", "general")
BRIDGES = ("none", "concat", "linear_tanh")
RNN_INPUTS = ("embedding", "context", "feed")
OUTPUT_INPUTS = ("h", "attentional", "context", "embedding")


@dataclass(frozen=True)
class Architecture:
    """How encoder and decoder are wired beyond the plain shape of Lee et al. (the defaults are that shape).

    Imported models declare theirs, so the stepper reproduces the module they came from:
    - `embed_activation`: applied to the decoder's embedded input (`relu`: the PyTorch tutorial's DecoderRNN);
    - `bidirectional`: the encoder reads the source both ways; a step's state is [forward; backward], each half
      hidden/2 wide, so encoder and decoder states share one width;
    - `bridge`: how the encoder's final states start the decoder: `none` (as they are, layer by layer),
      `concat` ([forward; backward] per layer, OpenNMT-py's brnn), `linear_tanh` (tanh(W [fwd; bwd] + b));
    - `attention`: `additive` (Bahdanau: v·tanh(Wq q + Wk k)), `dot` (q·k) or `general` (Wq q·k), over the
      encoder's top-layer states; `query`: `previous` (h before the step reads it, Bahdanau) or `current` (h
      after the step, Luong);
    - `rnn_input`: what layer 0 reads, concatenated in this order: the embedded token, the `context` (the
      attention's, or without attention the encoder's final state) and the `feed` (the previous step's
      attentional vector, Luong's input feeding);
    - `attentional`: Luong's h~ = tanh(W [context; h] + b) is formed after the step (`attentional_activation`
      none: without the tanh, as OpenNMT-py's mlp attention forms it);
    - `output_input`: what the output layer reads, concatenated in this order (h, attentional, context,
      embedding, as the source module concatenates them).
    """

    embed_activation: str = "none"
    bidirectional: bool = False
    bridge: str = "none"
    attention: str = "none"
    query: str = "previous"
    rnn_input: tuple[str, ...] = ("embedding",)
    attentional: bool = False
    output_input: tuple[str, ...] = ("h",)
    attentional_activation: str = "tanh"

    @property
    def is_plain(self) -> bool:
        return self == Architecture()

    @property
    def has_context(self) -> bool:
        """Whether a step forms a context vector (an attention's, or the encoder's final state fed to each step)."""
        return self.attention != "none" or "context" in self.rnn_input or "context" in self.output_input

    def describe(self) -> str:
        """One phrase a user can check against the module they trained."""
        parts = []
        if self.bidirectional:
            parts.append(f"bidirectional encoder (bridge {self.bridge})")
        if self.embed_activation != "none":
            parts.append(f"{self.embed_activation} on the decoder's embedded input")
        if self.attention != "none":
            parts.append(f"{self.attention} attention on the {self.query} state")
        if self.rnn_input != ("embedding",):
            parts.append("decoder reads (" + ", ".join(self.rnn_input) + ")")
        if self.attentional:
            parts.append("attentional vector " + ("tanh(W (context, h))" if self.attentional_activation == "tanh"
                                                  else "W (context, h)"))
        if self.output_input != ("h",):
            parts.append("output reads (" + ", ".join(self.output_input) + ")")
        return ", ".join(parts) or "plain (no attention)"

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> Architecture:
        fields = {k: tuple(data[k]) if isinstance(data[k], list) else data[k] for k in cls.__dataclass_fields__
                  if k in data}
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int  # the target vocabulary (and the source's when `src_vocab_size` is None)
    cell: str = "gru"
    emb_dim: int = 128
    hidden: int = 256
    max_position: int = 13
    n_signals: int = 1
    max_len: int = 16  # longest source span / target the model was trained on
    layers: int = 1
    shared_embedding: bool = True  # one embedding for source and target, or src_embedding + tgt_embedding
    src_vocab_size: int | None = None  # a separate source vocabulary's size (two vocabularies)
    architecture: Architecture = field(default_factory=Architecture)

    def to_json(self) -> dict:
        data = asdict(self)
        data["architecture"] = self.architecture.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if isinstance(fields.get("architecture"), dict):
            fields["architecture"] = Architecture.from_json(fields["architecture"])
        return cls(**fields)

    @property
    def source_vocab_size(self) -> int:
        return self.vocab_size if self.src_vocab_size is None else self.src_vocab_size

    @property
    def encoder_hidden(self) -> int:
        """One direction's hidden size: half of `hidden` for a bidirectional encoder."""
        return self.hidden // 2 if self.architecture.bidirectional else self.hidden

    @property
    def gate_names(self) -> tuple[str, ...]:
        return ("r", "z", "n") if self.cell == "gru" else ("i", "f", "g", "o")


def architecture_problems(arch: Architecture, cell: str, hidden: int, layers: int) -> list[str]:
    """Every reason this wiring cannot be stepped (empty: it can): the checkpoint reader and the importer both
    ask, so a file and an import are refused for the same reasons, all at once."""
    problems = []
    choices = {"embed_activation": ("none", "relu"), "bridge": BRIDGES, "attention": ATTENTIONS,
               "query": ("previous", "current"), "attentional_activation": ("tanh", "none")}
    for name, allowed in choices.items():
        if getattr(arch, name) not in allowed:
            problems.append(f"{name} {getattr(arch, name)!r} is not one of {', '.join(allowed)}")
    if arch.bidirectional and (hidden % 2 or arch.bridge == "none"):
        problems.append("a bidirectional encoder needs an even hidden size and a bridge (concat or linear_tanh)")
    if not arch.bidirectional and arch.bridge != "none":
        problems.append(f"bridge {arch.bridge!r} joins a bidirectional encoder's two directions; this one has one")
    if arch.bridge == "linear_tanh" and (layers != 1 or cell != "gru"):
        problems.append("a linear_tanh bridge starts a one-layer GRU decoder only")
    if not arch.rnn_input or arch.rnn_input[0] != "embedding" or len(set(arch.rnn_input)) != len(arch.rnn_input) \
            or not set(arch.rnn_input) <= set(RNN_INPUTS):
        problems.append(f"rnn_input {list(arch.rnn_input)} must start with embedding and name each of "
                        f"{', '.join(RNN_INPUTS[1:])} at most once")
    if not arch.output_input or len(set(arch.output_input)) != len(arch.output_input) \
            or not set(arch.output_input) <= set(OUTPUT_INPUTS):
        problems.append(f"output_input {list(arch.output_input)} must name each of {', '.join(OUTPUT_INPUTS)} "
                        "at most once")
    if arch.attentional and arch.attention == "none":
        problems.append("an attentional vector needs an attention")
    if not arch.attentional and ("feed" in arch.rnn_input or "attentional" in arch.output_input):
        problems.append("input feeding and an output from the attentional vector need attentional = true")
    if arch.attention != "none" and arch.query == "current" and "context" in arch.rnn_input:
        problems.append("attention on the current state comes after the step, so the step cannot read its context")
    return problems
