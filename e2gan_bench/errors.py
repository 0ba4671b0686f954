"""User-facing errors: one clear line, exit code 2, no traceback."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Bad input from the user (file, field, value, what is allowed).

    The CLI turns any ``UserError`` into one line on stderr and exit code 2.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        value: Any = None,
        allowed: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(self.line())

    def line(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.field:
            parts.append(f"field '{self.field}'")
        if self.value is not None:
            v = repr(self.value)
            parts.append(f"value {v[:40] + '…' + v[-40:] if len(v) > 81 else v}")  # the end names a file
        head = ": ".join([", ".join(parts)]) if parts else ""
        msg = self.message
        if self.allowed:
            msg += f" (allowed: {self.allowed})"
        return f"{head}: {msg}" if head else msg

    def in_file(self, file: str | None) -> UserError:
        """The same error, naming ``file`` when it names none yet (a part that knows the field but not the file
        raises; the caller that knows the file adds it)."""
        if self.file or not file:
            return self
        return type(self)(self.message, file=file, field=self.field, value=self.value, allowed=self.allowed)


class ConfigError(UserError):
    """A malformed concept, suite or method file, or an unknown name in one."""


class CheckpointError(UserError):
    """A missing or corrupt checkpoint / artifact."""
