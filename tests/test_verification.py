"""Stage 3 as batches: the same rates as one run per group, confidence intervals, draws and definitions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_neuron.analysis.roles import MANIPULATIONS, PRIMARY, Role, paper_intervention
from tui_neuron.analysis.stats import rate_json, spread, wilson
from tui_neuron.analysis.verification import Group, by_position, landing_hits
from tui_neuron.model.interventions import NeuronSet, StepRef
from tui_neuron.model.stepper import Stepper
from tui_neuron.model.syntax import parse_intervention
from tui_neuron.training.evaluate import landed


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_interval_contains_the_rate(hits, n):
    hits = min(hits, n)
    lo, hi = wilson(hits, n)
    assert 0.0 <= lo <= hits / n <= hi <= 1.0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.97])
def test_wilson_interval_shrinks_with_n(p):
    widths = [wilson(round(p * n), n)[1] - wilson(round(p * n), n)[0] for n in (20, 200, 2000)]
    assert widths[0] > widths[1] > widths[2]


def test_spread_and_rate_json():
    s = spread([0.2, 0.4, 0.6])
    assert s["mean"] == pytest.approx(0.4) and s["sd"] == pytest.approx(0.2) and s["draws"] == 3
    r = rate_json(3, 4)
    assert r["rate"] == 0.75 and r["n"] == 4 and r["ci95"][0] < 0.75 < r["ci95"][1]


def test_batched_groups_land_like_separate_runs(tiny_gru, recording):
    """Many groups with row-limited interventions in one batch equal each group run on its own."""
    stepper = Stepper(tiny_gru.model, tiny_gru.vocab)
    tid = int(recording.token_ids[np.nonzero(recording.landed)[0][0]])
    exs_by_T = by_position(recording, tid)
    rng = np.random.default_rng(0)
    groups = []
    for m in MANIPULATIONS:
        for T, exs in exs_by_T.items():
            if T >= m.min_T:
                ns = NeuronSet.of(rng.choice(64, size=20, replace=False).tolist())
                groups.append(Group(exs, m.interventions(ns, T), m.shift))
    batched = landing_hits(stepper, groups, row_budget=40)
    for g, hits in zip(groups, batched):
        T = g.examples[0].controls[0][1]
        tr = stepper.run(g.examples, g.interventions, max_steps=T + max(g.shift, 0), record_gates=False, topk=0,
                         stop_at_eos=False)
        alone = [landed(tr.output_ids(b), e.controls[0][0], T + g.shift) for b, e in enumerate(g.examples)]
        assert list(hits) == alone


def test_table_cells_carry_n_intervals_draws_and_definitions(results):
    for name, row in results["table"].items():
        s = row["set"]
        assert s["n"] > 0 and s["ci95"][0] <= s["rate"] <= s["ci95"][1]
        assert sum(v["n"] for v in s["by_T"].values()) == s["n"]
        if row["random"] is not None:
            sp = row["random"]["spread"]
            assert sp["draws"] >= 10 and sp["min"] <= sp["mean"] <= sp["max"]
        assert name.startswith(("all:", "none:")) or row["definition"]
    counting = results["table"]["counting: h[T-1] <- h[T-1-1] (token 1 later)"]
    assert min(int(T) for T in counting["set"]["by_T"]) >= 3  # counting needs T >= 3


def test_counting_records_shared_candidates_and_per_token_sets(results):
    shared = set(results["counting_candidates"]["stage1"])
    assert shared == set(results["counting_probe"]["candidates"])
    per_token = results["roles"]["counting"]
    assert "*" not in per_token
    for word, entry in results["tokens"].items():
        if "neurons" in entry and entry["neurons"]["counting"]:
            assert per_token[word] == entry["neurons"]["counting"]
            assert set(per_token[word]) <= shared


def test_the_explorer_p_key_uses_the_roles_module():
    expected = {"storing": "zero:storing@T-1", "counting": "copy:counting@T-1<T-2",
                "triggering": "copy:triggering@T-1<T-1", "outputting": "zero:outputting@T-1"}
    for role in Role:
        iv = paper_intervention(role.value, StepRef(-1, relative_to_t=True))
        assert iv.spec() == expected[role.value]
        assert parse_intervention(iv.spec()) == iv
        assert iv.resolved({role.value: [4, 3]}).neurons.indices == (3, 4)
    assert PRIMARY[Role.STORING].name == "storing: zero at T-1"


def test_section5_reports_lstm_output_and_forget_gates(tiny_lstm):
    from tui_neuron.analysis.recording import build_examples, frequent_targets, heldout_lines, record
    from tui_neuron.analysis.verification import section5

    lines = heldout_lines(tiny_lstm)
    rec = record(tiny_lstm, build_examples(tiny_lstm, lines, frequent_targets(tiny_lstm, lines, 1), range(2, 5), 6))
    tid = int(rec.token_ids[0])
    s5 = section5(Stepper(tiny_lstm.model, tiny_lstm.vocab), rec, tid,
                  {"storing": [0, 1], "triggering": [2, 3], "outputting": [4, 5]})
    assert s5 is not None and set(s5) == {"with_triggering", "without_triggering", "clean"}
    assert 0.0 <= s5["clean"]["o_outputting"] <= 1.0 and 0.0 <= s5["clean"]["f_storing"] <= 1.0
