"""Reading results files back: one schema per kind, checked before the CLI or the explorer uses a field.

`load_results(path)` tells the kind (functions, probe, rank, crossmodel, curves, storing, match) from the
fields present and validates the fields the tool reads, so a damaged or hand-edited
file is one line naming the field, never a KeyError/TypeError later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from ..checkpoint.validate import read_json_file, validated
from ..errors import UserError

Neurons = list[int]
Count = Annotated[int, Meta(ge=0)]


class _Loose(Struct):
    """The fields the tool reads, types strict; other fields are kept in the file and ignored here. Each
    schema is kw_only (msgspec applies it per class), so required fields may follow ones with defaults."""


class Rate(_Loose, kw_only=True):
    rate: float
    n: Count
    hits: Count | None = None


class TableRow(_Loose, kw_only=True):
    set: Rate
    random: Rate | None  # required (null when no random control was run)
    mean_size: float | int | None


class GateMeans(_Loose, kw_only=True):
    """Section 5: z/r over the outputting/storing neurons for a GRU, o/f for an LSTM."""

    z_outputting: float | None = None
    r_storing: float | None = None
    o_outputting: float | None = None
    f_storing: float | None = None
    n: Count


class Figure2Point(_Loose, kw_only=True):
    token: str
    pc1: float
    pc2: float


class Figure3Point(_Loose, kw_only=True):
    T: int
    t: int
    mean: float


class FunctionsResults(_Loose, kw_only=True):
    kind: Literal["functions"] = "functions"
    n_examples: Count
    positioning_accuracy: float
    tokens: dict[str, Any]
    table: dict[str, TableRow]
    section5: dict[str, GateMeans] | None = None
    figure2: list[Figure2Point] = []
    figure3: list[Figure3Point] = []
    roles: dict[str, dict[str, Neurons]]


class ProbeSide(_Loose, kw_only=True):
    top_neurons: Neurons


class ProbeResults(_Loose, kw_only=True):
    kind: Literal["probe"] = "probe"
    hypothesis: str = "probe"
    plain: ProbeSide


class RankResults(_Loose, kw_only=True):
    kind: Literal["rank"] = "rank"
    hypothesis: str = "ranking"
    ranking: Neurons
    masking: dict[str, Any]


class CrossModel(_Loose, kw_only=True):
    ranking: Neurons


class CrossModelResults(_Loose, kw_only=True):
    kind: Literal["crossmodel"] = "crossmodel"
    models: Annotated[list[CrossModel], Meta(min_length=1)]


class Spread(_Loose, kw_only=True):
    mean: float
    sd: float
    min: float
    max: float
    draws: Count


class CurvePoint(_Loose, kw_only=True):
    neurons: Annotated[int, Meta(ge=1)]
    set: Rate
    random: Spread


class Curve(_Loose, kw_only=True):
    manipulation: str
    points: list[CurvePoint]


class CurvesResults(_Loose, kw_only=True):
    kind: Literal["curves"]
    tokens: list[str]
    curves: dict[str, Curve]


class StoringState(_Loose, kw_only=True):
    growth: list[dict[str, Any]]
    redundancy: dict[str, Any]


class StoringResults(_Loose, kw_only=True):
    kind: Literal["storing"]
    states: dict[str, StoringState]
    conclusion: list[str]


class Match(_Loose, kw_only=True):
    tokens: list[str]
    start: Count
    end: Count
    share: float
    margin: float
    source: str
    controls: list[str]


class MatchResults(_Loose, kw_only=True):
    kind: Literal["match"]
    part: Literal["encoder", "decoder"]
    neurons: Neurons
    threshold: float
    window: Annotated[int, Meta(ge=1)]
    matches: list[Match]
    histograms: dict[str, dict[str, Any]]


class OutputtingSize(_Loose, kw_only=True):
    stop_share: float
    curve: list[dict[str, Any]]
    smallest: dict[str, Any] | None


class LegibilityResults(_Loose, kw_only=True):
    kind: Literal["legibility"]
    n_examples: Count
    positioning_accuracy: float
    tokens: list[str]
    rows: dict[str, TableRow]
    outputting_size: OutputtingSize
    warnings: list[str] = []


MaybeGrid = list[list[float | None]]


class PatchStats(_Loose, kw_only=True):
    mean: MaybeGrid
    lo: MaybeGrid | None = None
    hi: MaybeGrid | None = None
    n: list[list[Count | None]] | None = None


class PatchMap(_Loose, kw_only=True):
    hook: str
    layer: Count
    exact: PatchStats | None = None
    attribution: PatchStats | None = None


class PatchBlock(_Loose, kw_only=True):
    label: str
    neurons: Annotated[Neurons, Meta(min_length=1)]


class PatchResults(_Loose, kw_only=True):
    kind: Literal["patch"]
    n_pairs: Count
    params: dict[str, Any]
    pairs: list[dict[str, Any]]
    steps: list[str]
    blocks: Annotated[list[PatchBlock], Meta(min_length=1)]
    maps: dict[str, PatchMap]
    warnings: list[str] = []


class ClusterResults(_Loose, kw_only=True):
    kind: Literal["cluster"]
    threshold: float
    clusters: list[Annotated[Neurons, Meta(min_length=1)]]
    representatives: Neurons


SCHEMAS: dict[str, type[_Loose]] = {
    "functions": FunctionsResults, "probe": ProbeResults, "rank": RankResults, "crossmodel": CrossModelResults,
    "curves": CurvesResults, "storing": StoringResults, "match": MatchResults, "legibility": LegibilityResults,
    "patch": PatchResults, "cluster": ClusterResults,
}


@dataclass
class LoadedResults:
    kind: str
    path: Path
    data: dict  # the file as read (validated), for renderers that show every field
    parsed: Any

    def top_neurons(self, hidden: int) -> tuple[str, list[int]]:
        """A group name and the neurons a reopened probe/ranking selects (the top 10% of a ranking)."""
        k = max(1, hidden // 10)
        p = self.parsed
        if isinstance(p, RankResults):
            return f"rank:{p.hypothesis}", p.ranking[:k]
        if isinstance(p, ProbeResults):
            return f"probe:{p.hypothesis}", p.plain.top_neurons
        if isinstance(p, CrossModelResults):
            return "crossmodel", p.models[0].ranking[:k]
        if isinstance(p, MatchResults):
            return "match", p.neurons
        if isinstance(p, ClusterResults):
            return "cluster:representatives", p.representatives
        raise UserError(f"{self.path} is a {self.kind} result; it selects no group of neurons")


def _kind_of(data: dict) -> str | None:
    if isinstance(data.get("kind"), str) and data["kind"] in SCHEMAS:
        return data["kind"]
    if "roles" in data or "table" in data:
        return "functions"
    if "ranking" in data and "masking" in data:
        return "rank"
    if "plain" in data:
        return "probe"
    if "models" in data:
        return "crossmodel"
    return None


def load_results(path: str | Path, expect: str | None = None) -> LoadedResults:
    """Read and validate a results file; `expect` names the one kind a command accepts."""
    path = Path(path)
    data = read_json_file(path, "results file")
    if not isinstance(data, dict):
        raise UserError(f"results file {path} must hold a JSON object")
    kind = _kind_of(data)
    if kind is None:
        raise UserError(f"results file {path} is not a tui-neuron result (functions, probe, rank, crossmodel, "
                        "curves, storing, match, legibility, patch or cluster)")
    if expect is not None and kind != expect:
        raise UserError(f"results file {path} is a {kind} result; this needs a {expect} result "
                        f"(tui-neuron analyze {expect})")
    parsed = validated(SCHEMAS[kind], data, f"results file {path}")
    return LoadedResults(kind, path, data, parsed)
