"""`export activations`: the states of any corpus in NeuroX's and LSTMVis's formats, streamed to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import _CHECKPOINT, _FORCE, COUNT, EXPORT_HELP, SEED, _load, app, err, out

export_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=EXPORT_HELP)
app.add_typer(export_app, name="export")


@export_app.command("activations")
def export_activations(
    checkpoint: _CHECKPOINT,
    corpus: Annotated[list[Path], typer.Argument(help="Text files or folders of .txt files, one sentence a line "
                                                      "(word/TAG files with --tagged)")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="The file (NeuroX) or folder (LSTMVis) to write")],
    fmt: Annotated[str, typer.Option("--format", help="neurox-hdf5, neurox-json or lstmvis")] = "neurox-hdf5",
    part: Annotated[str, typer.Option(help="encoder (a state per source word) or decoder (per output token)")]
    = "encoder",
    states: Annotated[str, typer.Option(help="Comma-separated: h, c (LSTM) and gates (r,z,n / i,f,g,o)")] = "h",
    layers: Annotated[str, typer.Option(help="Layers, e.g. 0,1 (default: every layer)")] = "",
    limit: Annotated[Optional[int], typer.Option(callback=COUNT, help="At most this many sentences")] = None,
    controls: Annotated[str, typer.Option(help="Decoder runs: random (each sentence's first word at a random T) "
                                               "or none (a model without controls)")] = "random",
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed for the decoder's random T")] = 0,
    tagged: Annotated[bool, typer.Option(help="The corpus is word/TAG text: the tags become LSTMVis's "
                                              "part-of-speech meta track")] = False,
    force: _FORCE = False,
) -> None:
    """Stream a corpus through the model and write every sentence's states as it comes (memory stays bounded);
    an interrupted export leaves nothing at --out."""
    from itertools import chain

    from ..analysis.activation_files import FORMATS
    from ..analysis.activations import ExportConfig, read_sentences, read_tagged_sentences, track_names

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        chosen = tuple(int(x) for x in layers.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--layers {layers!r}: give layer numbers such as 0,1") from None
    cfg = ExportConfig(part=part, states=tuple(s.strip() for s in states.split(",") if s.strip()), layers=chosen,
                       limit=limit, controls=controls, seed=seed)
    ckpt = _load(checkpoint)
    cfg.check(ckpt)
    _check_out(out_path, force)
    lines = read_tagged_sentences(corpus, limit) if tagged else read_sentences(corpus, limit)
    first = next(lines, None)  # an empty corpus is one line before anything is written
    if first is None:
        raise UserError("the corpus holds no sentences (no non-empty lines)")
    writer = _writer(fmt, out_path, track_names(cfg, ckpt.config.layers), ckpt)
    written, tokens = _stream(ckpt, cfg, chain([first], lines), writer, limit)
    out.print(f"{written} sentences, {tokens} tokens, tracks {', '.join(track_names(cfg, ckpt.config.layers))} "
              f"-> {out_path}")


def _stream(ckpt, cfg, lines, writer, limit: int | None) -> tuple[int, int]:
    """Every sentence's states to the writer as they come, with progress; on any failure or Ctrl-C the writer's
    partial file is removed and --out stays as it was."""
    from ..analysis.activations import stream_activations
    from .common import _rich_progress

    written = tokens = 0
    try:
        with _rich_progress() as progress:
            task = progress.add_task("sentences", total=limit)
            for words, acts, tags in stream_activations(ckpt, lines, cfg, lambda n: progress.advance(task, n)):
                writer.write(words, acts, tags)
                written, tokens = written + 1, tokens + len(words)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return written, tokens


def _check_out(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UserError(f"the folder {path.parent} does not exist; create it first")


def _writer(fmt: str, path: Path, tracks: list[str], ckpt):
    from ..analysis.activation_files import LSTMVisWriter, NeuroXHDF5Writer, NeuroXJSONWriter

    if fmt == "neurox-hdf5":
        return NeuroXHDF5Writer(path, tracks)
    if fmt == "neurox-json":
        return NeuroXJSONWriter(path, tracks)
    vocab = ckpt.vocab
    err.print(f"LSTMVis bundle: {path}/lstm.yml, states.h5, words.h5, words.dict", markup=False, highlight=False)
    return LSTMVisWriter(path, tracks, ckpt.config.hidden, vocab.itos, vocab.stoi, vocab.unk_id,
                         f"tui-neuron export of {Path(ckpt.path or 'model').name}")
