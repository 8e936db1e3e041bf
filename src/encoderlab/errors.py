"""User-facing errors.

Every error a user can cause (a bad path, a bad config key, a malformed input file) is raised as an
`EncoderlabError` whose message names the input and says how to fix it. The CLI prints these without a
traceback; anything else is a bug in encoderlab and keeps its traceback.
"""


class EncoderlabError(Exception):
    """An error caused by the user's input, with a message that says what to change."""


class ConfigError(EncoderlabError, ValueError):
    """An invalid configuration value, an unknown key or an inconsistent combination."""


class CheckpointError(EncoderlabError):
    """A model or training checkpoint that is missing, incomplete, corrupt or of the wrong kind."""


class InputDataError(EncoderlabError, ValueError):
    """An input file or in-memory input that cannot be used as given."""
