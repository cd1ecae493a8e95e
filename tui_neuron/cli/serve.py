"""`tui-neuron serve`: the same explorer in a browser (textual-serve), one explorer per visitor."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import _load, app, err, limits

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A .safetensors checkpoint (default: the shipped one)")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; the default serves this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(callback=limits(1, 65535), help="Port to listen on")] = 8000,
) -> None:
    """Serve the explorer in a web browser: open http://HOST:PORT. Each visitor runs their own explorer on this
    machine, as this user (what they save goes to this user's data folder)."""
    ckpt = _load(checkpoint)  # checked here: a bad checkpoint is one line, not a broken page
    if not host.strip():
        raise UserError("--host is empty: give an address such as 127.0.0.1")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host") from None
    if host not in LOCAL_HOSTS:
        err.print(f"warning: listening on {host}: anyone who can reach {host}:{port} can run the explorer on this "
                  "machine as this user — run analyses, use its CPU, and save sessions and results in this user's "
                  "data folder. There is no login. Bind to 127.0.0.1 (the default) unless the network is trusted.",
                  markup=False, highlight=False, soft_wrap=True)
    command = shlex.join([sys.executable, "-m", "tui_neuron.cli", "open", str(Path(ckpt.path).resolve())])
    err.print(f"serving {ckpt.path} at http://{host}:{port} (Ctrl-C stops)", markup=False, highlight=False)
    import signal

    from .children import end_descendants, quiet_closed_loop_warnings
    from .common import interrupts_as_exceptions

    interrupts_as_exceptions()  # the server stops its visitors' explorers on its way out
    signal.signal(signal.SIGHUP, _hang_up)  # a closed terminal stops the server the same way
    quiet_closed_loop_warnings()
    try:
        page = Path(__file__).resolve().parent.parent / "app" / "serve_page"  # the page fills the window
        _server_class()(command, host=host, port=port, title="tui-neuron", templates_path=page).serve()
    except KeyboardInterrupt:
        pass
    finally:
        end_descendants()  # every visitor's explorer, whichever signal stopped the server
    err.print("stopped", markup=False, highlight=False)


def _server_class() -> type:
    """textual-serve's server, ending its visitors' explorers and their sockets when asked to exit. Its own shutdown
    waits for each visitor's socket to close, which only an explorer that quits normally does: an explorer still
    starting kept Ctrl-C waiting 25 s."""
    import asyncio

    from textual_serve.server import Server

    from .children import end_descendants

    class ExplorerServer(Server):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self.visits: set[asyncio.Task] = set()  # each visitor's socket handler

        def request_exit(self) -> None:
            end_descendants(grace=1.0)
            for visit in self.visits:
                visit.cancel()  # textual-serve closes the socket of a cancelled visit
            super().request_exit()

        async def handle_websocket(self, request):  # type: ignore[no-untyped-def]
            visit = asyncio.current_task()
            assert visit is not None
            self.visits.add(visit)
            try:
                return await super().handle_websocket(request)
            finally:
                self.visits.discard(visit)

    return ExplorerServer


def _hang_up(signum, frame) -> None:  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt
