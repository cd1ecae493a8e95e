"""Is a refactor exact? Dump the shipped GRU's and LSTM's traces (h, gates, c, outputs, top-k, logits) under every
intervention kind the analyses use, from one version of the code, and compare two dumps.

    git archive REV tui_neuron | tar -x -C /tmp/old && mv /tmp/old/tui_neuron /tmp/old/tn_old
    PKG=tn_old PYTHONPATH=/tmp/old python scripts/compare_versions.py /tmp/old.npz   # the old code
    python scripts/compare_versions.py /tmp/new.npz                                  # this checkout
    python scripts/compare_versions.py --compare /tmp/old.npz /tmp/new.npz
"""
import sys

import numpy as np
import torch

if sys.argv[1] == "--compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    worst = 0.0
    for k in a.files:
        d = float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) if a[k].size else 0.0
        worst = max(worst, d)
        if d:
            print("differs", k, d)
    print(f"{len(a.files)} arrays compared, largest |difference| {worst}")
    sys.exit(0)

torch.set_num_threads(1)
import importlib  # noqa: E402
import os  # noqa: E402

PKG = os.environ.get('PKG', 'tui_neuron')
load_checkpoint = importlib.import_module(PKG + '.checkpoint.format').load_checkpoint
Stepper = importlib.import_module(PKG + '.model.stepper').Stepper
try:
    parse_intervention = importlib.import_module(PKG + '.model.syntax').parse_intervention
except ImportError:
    parse_intervention = importlib.import_module(PKG + '.model.interventions').parse_intervention
heldout_examples = importlib.import_module(PKG + '.training.evaluate').heldout_examples

SPECS = [[], ["zero:all@T-1"], ["zero:0-99@T-1"], ["keep:0-49@T"], ["copy:3,17,40-60@T-1<T-2"], ["copy:all@T-1<T-3"],
         ["set:5,9=0.5@2"], ["randin@*"], ["randin@3:seed=4"], ["set.z:all=1@T"], ["zero.r:0-30@T-1"],
         ["copy.z:0-20@T<T-1"], ["swap:0-60@0<the king sat by the fire . king@4"],
         ["zero:all@-2"], ["zero:0-50@*"], ["zero:1-5@T-1", "copy:6-9@T<T-1", "randin@*"]]
out = {}
for name in ("gru", "lstm"):
    ckpt = load_checkpoint(f"checkpoints/{name}-positioning.safetensors")
    exs = heldout_examples(ckpt, n=64, seed=7)[1]
    st = Stepper(ckpt.model, ckpt.vocab)
    if name == "lstm":
        specs = [[x.replace(".z:", ".f:").replace(".r:", ".i:") for x in sp] for sp in SPECS]
        specs += [["zero.c:0-99@T-1"], ["copy.f:all@T<T-1"]]
    else:
        specs = SPECS
    for i, spec in enumerate(specs):
        tr = st.run(exs, [parse_intervention(s) for s in spec], keep_logits=True)
        key = f"{name}{i}"
        out[key + "h"] = tr.h.numpy()
        for g, v in tr.gates.items():
            out[key + g] = v.numpy()
        if tr.c is not None:
            out[key + "c"] = tr.c.numpy()
        out[key + "out"] = tr.outputs.numpy()
        out[key + "top"] = tr.top_probs.numpy()
        out[key + "logits"] = tr.logits.numpy()
    one = heldout_examples(ckpt, n=5, seed=3)[1][:1]
    gate = ".f:" if name == "lstm" else ".z:"
    swaps = ["swap:all@T-1<the queen is here queen@2", f"swap{gate}0-40@T<the king sat by the fire . king@4"]
    for j, spec in enumerate(swaps):
        tr = st.run(one, [parse_intervention(spec)], keep_logits=True)
        out[f"{name}swap{j}h"] = tr.h.numpy()
        out[f"{name}swap{j}logits"] = tr.logits.numpy()
    # the analyses' batched path: rows-limited interventions and repeated sources
    from dataclasses import replace
    ivs = [replace(parse_intervention("zero:0-99@T-1"), rows=tuple(range(0, 32))),
           replace(parse_intervention("copy:0-50@T-1<T-2"), rows=tuple(range(32, 64)))]
    tr = st.run(exs[:32] + exs[:32], ivs)
    out[f"{name}rows_h"] = tr.h.numpy()
    out[f"{name}rows_out"] = tr.outputs.numpy()
np.savez(sys.argv[1], **out)
print("saved", len(out))
