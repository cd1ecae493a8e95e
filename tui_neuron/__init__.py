"""tui-neuron: a terminal explorer for the neurons of recurrent encoder-decoders."""

__version__ = "0.1.0"
