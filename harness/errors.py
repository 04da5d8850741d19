"""Bad input to the harness (suites, run folders, datasets, CLI flags)."""
from models.errors import InputError


class UserError(InputError):
    """A one-line, user-facing error: the CLI prints it and exits with code 2."""
