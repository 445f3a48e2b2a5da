"""Errors that name what is wrong and where, so a user can fix their file or config without reading our code."""


class HmtlError(Exception):
    """Base class for every error the package raises on purpose."""


class DataFormatError(HmtlError, ValueError):
    """A corpus file does not match its format: names the file, the line and what was expected."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(HmtlError, ValueError):
    """A configuration key is unknown, missing or has a bad value: names the key."""
