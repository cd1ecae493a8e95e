"""Print the README's key table, generated from the explorer's bindings (tests/test_readme.py checks it is current).

    python scripts/key_table.py
"""

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.screens import markdown_key_table

print(markdown_key_table(ExplorerApp.all_bindings()))
