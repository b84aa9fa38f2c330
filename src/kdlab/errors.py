"""The one base class for errors a user can fix (bad params, files, environment).

Stages print these as one clear line and exit 1; anything else is a bug and
keeps its traceback.
"""


class KdlabError(ValueError):
    """An input or environment problem, with a message that says what to do."""
