"""Problems a user can fix. The core names its own parameters; each face says them in its own words.

`UserError` is any such problem: the CLI prints its message as one `error:` line (exit 2), the explorer as a
notification. `ParameterError` is a wrong value of one named parameter of a job or a config: its message says
`{param}` where the parameter is named, so the CLI can say `--window 0: …` and the explorer `window 0: …`
from the same error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class UserError(Exception):
    """Bad input (a file, a value, a control signal): the message says what is wrong and how to fix it."""


class ParameterError(UserError):
    """A parameter's value is wrong. `template` names it as `{param}`; `param` is its name in the core. A message
    that must name other parameters too ("give one of a or b") lists them in `others`, each as `{name}`."""

    def __init__(self, param: str, template: str, others: Sequence[str] = ()):
        self.param, self.template, self.others = param, template, tuple(others)
        super().__init__(self.named(lambda name: name))

    def named(self, name_for: Callable[[str], str]) -> str:
        """The message with the face's names for the parameters (its flags, its keys)."""
        return self.template.format(param=name_for(self.param), **{o: name_for(o) for o in self.others})
