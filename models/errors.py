"""The one exception type for bad input anywhere in the project.

The CLI turns it into a single line on stderr and exit code 2; anything else is a bug and
keeps its traceback. `models/` raises it for unknown variants, sizes, weights or audio files;
`harness/` subclasses it for suites, runs and datasets.
"""


class InputError(ValueError):
    """A user-supplied input is wrong. The message names the input and what is wrong."""
