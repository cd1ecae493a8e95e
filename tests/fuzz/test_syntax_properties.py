"""Property tests (Hypothesis) of the intervention and control syntax: round trips, and parse ⇒ applies cleanly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_neuron.errors import UserError
from tui_neuron.model.examples import ControlSignal, make_example
from tui_neuron.model.interventions import (
    CopyFromRun,
    CopyFromStep,
    KeepOnly,
    NeuronSet,
    RandomInput,
    Scale,
    SetValue,
    StepRef,
)
from tui_neuron.model.stepper import Stepper
from tui_neuron.model.syntax import parse_intervention

from .helpers import tiny_checkpoint

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

neuron_sets = st.one_of(st.just(NeuronSet(None)),
                        st.lists(st.integers(0, 7), min_size=1, max_size=6).map(NeuronSet.of),
                        st.from_regex(r"[a-z_][a-z0-9_]{0,9}", fullmatch=True).filter(lambda n: n != "all")
                        .map(lambda n: NeuronSet(None, n)))
steps = st.one_of(st.builds(StepRef, st.integers(-6, 20)),
                  st.builds(lambda k: StepRef(k, relative_to_t=True), st.integers(-6, 6)),
                  st.just(StepRef(every=True)))
fixed_steps = steps.filter(lambda s: not s.every)
values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
sources = st.sampled_from(["w1 w2 w3 w2@2", "w4 w5 w5@1", "w1 w1 w3 w6 w3@3"])

interventions = st.one_of(
    st.builds(SetValue, neuron_sets, steps, st.sampled_from(["h", "c", "z", "f"]), values),
    st.builds(KeepOnly, neuron_sets, steps),
    st.builds(Scale, neuron_sets, steps, st.sampled_from(["h", "c", "z", "f"]), values),
    st.builds(CopyFromStep, neuron_sets, steps, st.sampled_from(["h", "c", "z", "f"]), fixed_steps),
    st.builds(CopyFromRun, neuron_sets, steps, st.sampled_from(["h", "c", "z", "f"]), sources),
    st.builds(lambda s, seed: RandomInput(NeuronSet(None), s, seed=seed), steps, st.integers(0, 10**6)),
)


@SETTINGS
@given(interventions)
def test_spec_round_trips(iv):
    """parse(spec) gives an intervention whose spec is the same text (values print with %g, so compare specs)."""
    once = parse_intervention(iv.spec())
    assert once.spec() == iv.spec()
    assert parse_intervention(once.spec()) == once
    if not isinstance(iv, (SetValue, Scale)):
        assert once == iv


@SETTINGS
@given(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), st.integers(1, 10**6))
def test_control_round_trips(word, position):
    c = ControlSignal(word, position)
    assert ControlSignal.parse(str(c)) == c


@pytest.fixture(scope="module")
def stepper(tmp_path_factory):
    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("prop") / "m.safetensors")
    return Stepper(ckpt.model, ckpt.vocab), ckpt


SPEC_TEXT = st.one_of(
    interventions.map(lambda iv: iv.spec()),
    st.from_regex(r"(zero|set|scale|keep|copy|swap|randin)(\.c)?:[0-9a-z,\-]{0,8}(=[0-9.e+-]{0,6})?@[Tt0-9+\-*]{0,5}"
                  r"(<[a-zT0-9@ +\-]{0,12})?", fullmatch=True),
    st.text(max_size=30),
)


@SETTINGS
@given(SPEC_TEXT, st.integers(1, 4))
def test_anything_that_parses_applies_cleanly(stepper, text, position):
    """Text either fails to parse with a UserError, or runs (or is refused for this run) with a UserError only."""
    runner, ckpt = stepper
    try:
        iv = parse_intervention(text)
    except UserError:
        return
    example = make_example(ckpt.vocab, "w1 w2 w3 w4 w5", [ControlSignal("w2", position)])
    try:
        trace = runner.run([example], [iv])
    except UserError:
        return
    assert trace.h.isfinite().all() or isinstance(iv, (SetValue, Scale))
