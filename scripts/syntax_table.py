"""Print the intervention syntax table of docs/cli.md, generated from the grammar table (tests/test_readme.py
checks that the docs hold it)."""

from tui_neuron.model.syntax import markdown_table

if __name__ == "__main__":
    print(markdown_table())
