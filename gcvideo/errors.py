"""Errors that mean "the user's input is wrong" (a config value, a path, a file), not "gcvideo has a bug".

The command line prints a ``UserError`` as one line saying what to fix and exits with status 2; other
exceptions are bugs and keep their traceback. ``UserError`` is a ``ValueError``, so code that catches
``ValueError`` catches it too.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's input; the message alone must say what to fix."""


def require_positive(prefix: str, values: dict[str, int]) -> None:
    """Raise a ``UserError`` naming the first of ``values`` (option names under ``prefix``) that is < 1."""
    for name, value in values.items():
        if value < 1:
            raise UserError(f"{prefix}{name} must be >= 1, got {value}")
