"""Project exceptions: each one says what went wrong and where (file, line, field or config key)."""

from __future__ import annotations


class MathGPTError(Exception):
    """Base class of every error the platform raises on purpose."""


class ConfigError(MathGPTError):
    """A recipe or config value is invalid; the message names the key path."""


class RecordError(MathGPTError):
    """A data record is malformed; the message is `file:line: field: reason`."""

    def __init__(self, path: str, line: int, field: str, reason: str) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        super().__init__(f"{path}:{line}: {field}: {reason}")

    def __reduce__(self):  # picklable, so that it crosses from a Ray task to the driver intact
        return RecordError, (self.path, self.line, self.field, self.reason)


class MissingDependencyError(MathGPTError):
    """An optional dependency (usually from the `gpu` extra) is needed but not installed."""

    def __init__(self, package: str, feature: str, extra: str = "gpu", then: str = "") -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install the '{extra}' extra: pip install -e '.[{extra}]'" + (f" && {then}" if then else "")
        )


class StageError(MathGPTError):
    """A pipeline stage failed or its inputs are missing."""
