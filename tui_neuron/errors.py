"""Problems a user can fix. The core names its own parameters; each face says them in its own words.

`UserError` is any such problem: the CLI prints its message as one `error:` line (exit 2), the explorer as a
notification. `ParameterError` is a wrong value of one named parameter of a job or a config: its message says
`{param}` where the parameter is named, so the CLI can say `--window 0: …` and the explorer `window 0: …`
from the same error.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a file, a value, a control signal): the message says what is wrong and how to fix it."""


class ParameterError(UserError):
    """A parameter's value is wrong. `template` names it as `{param}`; `param` is its name in the core."""

    def __init__(self, param: str, template: str):
        self.param, self.template = param, template
        super().__init__(template.format(param=param))

    def named(self, name: str) -> str:
        """The message with the face's name for the parameter (a flag, a key)."""
        return self.template.format(param=name)
