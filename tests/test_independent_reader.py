"""A checkpoint reader written from docs/checkpoint-format.md alone: it imports torch, safetensors and the
standard library, never tui_neuron, and must decode like `tui-neuron decode`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "gru-positioning.safetensors"


class Reader:
    """Everything needed to greedy-decode a tui-neuron/2 checkpoint, from the format page."""

    def __init__(self, path: Path):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k).float() for k in f.keys()}
        assert meta["format"] == "tui-neuron/2"
        self.config = json.loads(meta["config"])
        self.itos = json.loads(meta["vocab"])["itos"]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.specials = json.loads(meta["special_tokens"])
        tokenizer = json.loads(meta["tokenizer"])
        self.pattern, self.lowercase = re.compile(tokenizer["pattern"]), tokenizer["lowercase"]
        c = self.config
        rnn = nn.GRU if c["cell"] == "gru" else nn.LSTM
        self.encoder = rnn(c["emb_dim"], c["hidden"], num_layers=c["layers"], batch_first=True)
        self.decoder = rnn(c["emb_dim"], c["hidden"], num_layers=c["layers"], batch_first=True)
        for part in ("encoder", "decoder"):
            getattr(self, part).load_state_dict({k[len(part) + 1 :]: v for k, v in tensors.items()
                                                 if k.startswith(part + ".")})
        shared = c["shared_embedding"]
        self.src_emb = tensors["embedding.weight" if shared else "src_embedding.weight"]
        self.tgt_emb = tensors["embedding.weight" if shared else "tgt_embedding.weight"]
        self.out_w, self.out_b = tensors["output.weight"], tensors["output.bias"]

    def source_ids(self, text: str, controls: list[tuple[str, int]]) -> list[int]:
        tokens = self.pattern.findall(text.lower() if self.lowercase else text)
        ids = [self.stoi.get(t, self.stoi[self.specials["unk"]]) for t in tokens]
        for word, position in controls:
            ids += [self.stoi[word], self.stoi[self.specials["position_pattern"].replace("{T}", str(position))]]
        return ids

    @torch.no_grad()
    def decode(self, ids: list[int]) -> list[int]:
        _, state = self.encoder(self.src_emb[torch.tensor([ids])])
        token, out = self.stoi[self.specials["bos"]], []
        for _ in range(self.config["max_len"] + 2):
            h, state = self.decoder(self.tgt_emb[torch.tensor([[token]])], state)
            token = int((h[0, -1] @ self.out_w.T + self.out_b).argmax())
            if token == self.stoi[self.specials["eos"]]:
                break
            out.append(token)
        return out


def _cli_decode(path: Path, source: str, control: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "tui_neuron.cli", "decode", str(path), source, "--control", control,
                        "--json"], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("source,word,position", [
    ("the queen is here .", "queen", 3), ("i will not go to the house with him , said she .", "house", 7),
    ("what a day it has been !", "day", 1), ("he came back the next morning and told them all", "morning", 11),
])
def test_reader_decodes_the_shipped_checkpoint_like_the_cli(source, word, position):
    reader = Reader(SHIPPED)
    ids = reader.source_ids(source, [(word, position)])
    expected = _cli_decode(SHIPPED, source, f"{word}@{position}")
    assert ids == expected["source_ids"]
    assert reader.decode(ids) == expected["output_ids"]


def test_reader_needs_no_tui_neuron():
    import ast

    tree = ast.parse(Path(__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.split(".")[0] == "tui_neuron" for m in modules), modules
