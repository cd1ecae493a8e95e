"""The console script's entry point.

Until a command says otherwise, Ctrl-C ends the program at once with exit 130 and one line: a
KeyboardInterrupt raised inside an import (torch's C++ extensions are loaded by pybind11) could otherwise
print a 26-line traceback or abort the process. Nothing is lost: every file is written atomically, and the
commands that keep state on an interrupt install their own handlers (training saves its last completed step;
the explorer restores the terminal), as `cli.common.interrupts_as_exceptions` does.
"""

from __future__ import annotations

import os
import signal


def _quit(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    os.write(2, b"interrupted\n")
    os._exit(130)


def main() -> None:
    # torch's idle OpenMP workers sleep instead of spinning for cores other work holds (read when torch loads;
    # an explicit setting wins): on a shared 2-core machine spinning made an export five times slower
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job started with SIGINT ignored
        signal.signal(signal.SIGINT, _quit)
    import sys

    if sys.argv[1:] == ["--version"]:  # answered without building the CLI (a third of its time)
        from . import __version__

        print(f"tui-neuron {__version__}")
        return
    from .cli import main as cli_main

    cli_main()
