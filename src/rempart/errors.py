"""One exception root for Rempart, with a short hierarchy.

Every error carries where it came from (a file and line, a key, a URL) so that the CLI and the
API can show a single clear line to the user, never a traceback.

    RempartError
    ├── ConfigError          configuration file: unknown key, wrong type, missing file
    ├── InputError           input data that cannot be read at all (not a malformed line:
    │                        those are quarantined, see rempart.ingest.quarantine)
    ├── ProfileError         a route profile that does not compile
    ├── RuleError            a detection rule that does not compile (file + line)
    ├── KeyMaterialError     missing, wrong or unreadable key; tampered ciphertext
    ├── StoreError           durable state that cannot be opened or is inconsistent
    └── NotFoundError        an incident, alert or decision id that does not exist
"""

from __future__ import annotations


class RempartError(Exception):
    """Root of every error Rempart raises on purpose.

    ``where`` names the origin (``file:line``, ``config key``, ``table.column``...).
    ``str(err)`` is the one line shown to users.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ConfigError(RempartError):
    """The configuration is invalid: startup stops (fail closed)."""


class InputError(RempartError):
    """An input source cannot be read at all (missing file, unknown format)."""


class ProfileError(RempartError):
    """A route profile is invalid."""


class RuleError(RempartError):
    """A detection rule is invalid; ``where`` is ``file:line``."""


class KeyMaterialError(RempartError):
    """Key material is missing or wrong, or a ciphertext fails authentication."""


class StoreError(RempartError):
    """Durable state cannot be opened, read or written."""


class NotFoundError(RempartError):
    """A referenced object does not exist."""
