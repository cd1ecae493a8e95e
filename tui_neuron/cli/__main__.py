"""`python -m tui_neuron.cli`."""

from . import main

main()
