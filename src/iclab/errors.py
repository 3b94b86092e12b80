"""The errors iclab raises for user mistakes.

Every message names what was given, where it came from and what is allowed, so that
the command line can print it as one line without a traceback.
"""

from __future__ import annotations


class IclabError(Exception):
    """Base class of user-facing errors; the CLI prints these as one line."""


class ConfigError(IclabError, ValueError):
    """A config key, value or preset that is not allowed."""


class UnknownNameError(IclabError, KeyError):
    """A registry lookup (study, world, probe, preset, family) for a name that does not exist."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ModelLoadError(IclabError, OSError):
    """A model name or path that does not load, or a checkpoint that is corrupt."""


class InputError(IclabError, ValueError):
    """Inputs a world or probe cannot use (prompts of the wrong shape, a label that is not one token)."""


class IclabWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI prints it as one line."""


class DamagedFileWarning(IclabWarning):
    """A file under a runs root that cannot be read (truncated, garbled) and was skipped."""
