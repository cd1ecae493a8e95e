"""tui-neuron: a terminal explorer for the neurons of recurrent encoder-decoders.

The Python API is the core the CLI and the explorer call; names load on first use, so `import tui_neuron`
(and the CLI's start) stays free of torch until one is needed:

    from . import load_checkpoint, decode_one, parse_intervention, labelled, probe
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "load_checkpoint": "checkpoint.format",
    "Checkpoint": "checkpoint.format",
    "Stepper": "model.stepper",
    "parse_intervention": "model.syntax",
    "NeuronSet": "model.interventions",
    "StepRef": "model.interventions",
    "SetValue": "model.interventions",
    "KeepOnly": "model.interventions",
    "CopyFromStep": "model.interventions",
    "CopyFromRun": "model.interventions",
    "RandomInput": "model.interventions",
    "Scale": "model.interventions",
    "decode_one": "analysis.decoding",
    "labelled": "analysis.corpus_states",
    "probe": "analysis.probes",
    "rank": "analysis.neurox",
    "RankConfig": "analysis.neurox",
    "analyze_functions": "analysis.functions",
    "FunctionsConfig": "analysis.functions",
    "run_curves": "analysis.curves",
    "CurvesConfig": "analysis.curves",
    "run_storing": "analysis.storing",
    "StoringConfig": "analysis.storing",
    "run_legibility": "analysis.legibility",
    "LegibilityConfig": "analysis.legibility",
    "record": "analysis.recording",
    "build_examples": "analysis.recording",
    "load_results": "analysis.results_files",
    "UserError": "errors",
    "run_functions": "analysis.jobs",
    "run_probe": "analysis.jobs",
    "run_rank": "analysis.jobs",
    "run_memory": "analysis.jobs",
    "FunctionsJob": "analysis.jobs",
    "ProbeJob": "analysis.jobs",
    "RankJob": "analysis.jobs",
    "MemoryJob": "analysis.jobs",
    "run_match": "analysis.jobs",
    "MatchJob": "analysis.jobs",
    "preset": "analysis.jobs",
    "hook_points": "model.stepper",
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> object:
    """Load an API name from its module on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'tui_neuron' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
