"""The one exception type for errors a user can cause (bad flag, missing data, malformed file)."""

from __future__ import annotations

from contextlib import contextmanager


class OptbenchError(Exception):
    """A user-facing error: the message names the field, the value and what is allowed.

    The CLI prints it without a traceback and exits with code 2.
    """

    exit_code = 2


def require(condition: bool, message: str) -> None:
    """Raise OptbenchError(message) unless condition holds."""
    if not condition:
        raise OptbenchError(message)


@contextmanager
def user_errors(*types: type[Exception]):
    """Report exceptions of `types` (raised by code that cannot import optbench, e.g. optbench.standalone) as
    OptbenchError with the same message."""
    try:
        yield
    except types as e:
        raise OptbenchError(str(e)) from None
