"""`decode` (headless) and `open` (the explorer) on one sentence and its controls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import _LAYER, _load, _load_layer, _load_results, _print_json, app, err, out


@app.command()
def decode(
    checkpoint: Annotated[Optional[Path], typer.Argument(
        help="A .safetensors checkpoint (default: the session's, with --session; else the shipped one)")] = None,
    source: Annotated[Optional[str], typer.Argument(help="Source sentence")] = None,
    control: Annotated[Optional[list[str]], typer.Option("--control", "-c", help="WORD@T (repeatable)")] = None,
    intervene: Annotated[
        Optional[list[str]], typer.Option("--intervene", "-i", help="Intervention spec (repeatable), e.g. zero:all@T-1")
    ] = None,
    session: Annotated[
        Optional[Path], typer.Option(help="Replay a saved explorer session (source, controls, interventions, and "
                                                "source B of the compare view)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with every step's ids, h and gates")] = False,
    results: Annotated[Optional[Path], typer.Option(
        help="analyze functions results: role names (STORING, COUNTING, TRIGGERING, OUTPUTTING) then stand for "
             "the first control token's neurons in --intervene, e.g. set.z:OUTPUTTING=0@T")] = None,
    layer: _LAYER = None,
) -> None:
    """Greedy-decode one source with control signals, optionally with interventions."""
    from ..analysis.decoding import decode_one
    from ..analysis.roles import role_groups
    from ..model.examples import ControlSignal, split_controls, unknown_warning
    from ..model.syntax import parse_intervention

    ivs = [parse_intervention(s) for s in intervene or []]
    controls = list(control or [])
    groups: dict[str, list[int]] = {}
    compare = ""  # a session's source B (the explorer's compare view), decoded beside A
    if session is not None:
        checkpoint, source, controls, ivs, compare, groups = _from_session(session, checkpoint, source, controls, ivs)
    if source is None:
        raise UserError("give a source sentence (or --session FILE)")
    ckpt = _load_layer(checkpoint, layer) if layer is not None else _load(checkpoint)
    if results is not None and controls:
        groups = {**role_groups(_load_results(results)["roles"], ControlSignal.parse(controls[0]).token), **groups}
    result = decode_one(ckpt, source, controls, ivs, names=groups)
    warning = unknown_warning(ckpt.vocab, source)  # after the inputs ran: an error stays the only line
    if warning:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    b_result = None
    if compare:
        b_source, b_controls = split_controls(compare)
        b_result = decode_one(ckpt, b_source, b_controls)
    if as_json:
        data = result.to_json(with_states=True, layer=layer)
        if b_result is not None:
            data["compare"] = b_result.to_json(with_states=True, layer=layer)
        _print_json(data)
        return
    out.print(f"source  : {' '.join(result.source_tokens)}")
    out.print(f"controls: {' '.join(result.controls)}")
    _print_outputs(result.output_tokens, result.landing_lines())
    if ivs:
        out.print(f"[bold]with {', '.join(iv.spec() for iv in result.interventions)}[/]")
        _print_outputs(result.changed_tokens, result.landing_lines(changed=True))
    if b_result is not None:
        out.print(f"[bold]source B[/] (compare view): {' '.join(b_result.source_tokens)} "
                  f"{' '.join(b_result.controls)}")
        _print_outputs(b_result.output_tokens, b_result.landing_lines())


def _from_session(session: Path, checkpoint: Path | None, source: str | None, controls: list[str], ivs: list):
    """A saved session fills in what the command line left out: the checkpoint, the source, the controls, the
    interventions before the given ones, source B and the groups."""
    from ..analysis.session import load_session

    sess = load_session(session)
    if checkpoint is None and sess.checkpoint:
        checkpoint = Path(sess.checkpoint)
    return (checkpoint, source or sess.source, controls or sess.controls, sess.active_interventions() + ivs,
            sess.compare, dict(sess.groups))


def _print_outputs(tokens: list[str], landings: list[str]) -> None:
    """A run's output and where each control landed."""
    out.print(f"output  : {' '.join(tokens)}")
    for line in landings:
        out.print(f"  {line}")


@app.command("open")
def open_cmd(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A .safetensors checkpoint (default: the shipped one)")] = None,
    session: Annotated[Optional[Path], typer.Option(help="Reopen a saved session JSON")] = None,
    results: Annotated[Optional[Path], typer.Option(
        help="A results file of any analysis (functions tags roles; probe, rank, crossmodel select neurons; "
             "curves, storing)")] = None,
) -> None:
    """Open the explorer."""
    from ..analysis.results_files import load_results
    from ..analysis.session import Session, load_session

    ckpt = _load(checkpoint)
    loaded = load_results(results) if results else None  # checked before the screen opens: one line if bad
    sess = load_session(session) if session is not None else None
    if loaded is not None:
        sess = sess or Session()
        sess.results = [*sess.results, str(loaded.path)]
    from ..app.explorer import ExplorerApp
    from .common import interrupts_as_exceptions

    interrupts_as_exceptions()  # the app restores the terminal on its way out
    ExplorerApp(ckpt, session=sess, session_path=session).run()
