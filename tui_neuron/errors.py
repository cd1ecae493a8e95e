"""One exception type for problems a user can fix; the CLI and the explorer print its message."""


class UserError(Exception):
    """Bad input (a file, a flag, a control signal): the message says what is wrong and how to fix it."""
