"""The one exception type that the CLI turns into a single line on stderr."""


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""
