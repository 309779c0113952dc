"""Errors and tolerated-quirk reports. Every error of this package derives from EspiError."""

from __future__ import annotations

from dataclasses import dataclass


class EspiError(Exception):
    """Root of the errors raised by :mod:`espi`."""


def where(file: str | None, line: int | None, column: int | None = None) -> str:
    """``file:line:column`` with the parts that are known."""
    parts = [file or "<input>"]
    if line is not None:
        parts.append(str(line))
        if column is not None:
            parts.append(str(column))
    return ":".join(parts)


class ParseError(EspiError, ValueError):
    """The input is not a readable Green Button document: not well-formed, unsafe, too large,
    or (with ``ParseOptions(strict=True)``) not what the standard says."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        element: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.element = element
        text = f"{where(file, line, column)}: {message}"
        if element:
            text += f" (at {element})"
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One XSD violation: where it is and what the schema says."""

    file: str | None
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        return f"{where(self.file, self.line)}: {self.message} (at {self.path})"


class SchemaError(EspiError, ValueError):
    """A document is not valid against the ESPI schemas; ``problems`` lists every violation."""

    def __init__(self, problems: list[SchemaProblem]) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} schema problem(s):\n{lines}{more}")


class EspiWarning(UserWarning):
    """Issued once per kind of deviation a document shows and the reader tolerated."""


@dataclass(slots=True)
class Quirk:
    """A deviation from the standard the reader tolerated on purpose.

    ``code`` names the kind (``legacy-name``, ``unknown-element``, ``date-only-timestamp``, ...);
    ``line``/``element`` say where it was first seen; ``count`` how often it occurred.
    """

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    element: str | None = None
    count: int = 1

    def __str__(self) -> str:
        times = f" ({self.count} times)" if self.count > 1 else ""
        at = f" (at {self.element})" if self.element else ""
        return f"{where(self.file, self.line)}: {self.message}{at}{times}"


class ProviderError(EspiError):
    """A data provider (Pelm, WattShift, ...) refused or failed a request.

    ``status`` is the HTTP status (None when no answer came), ``code`` the provider's own error
    code when its body names one, ``body`` the answer's text (at most 2,000 characters).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        code: str | None = None,
        body: str = "",
    ) -> None:
        self.message = message
        self.provider = provider
        self.status = status
        self.code = code
        self.body = body[:2000]
        head = provider or "provider"
        if status is not None:
            head += f" HTTP {status}"
        if code:
            head += f" {code}"
        super().__init__(f"{head}: {message}")


class AuthError(ProviderError):
    """Credentials or token missing, wrong, expired or revoked."""


class RateLimited(ProviderError):
    """Too many requests; ``retry_after`` is how many seconds the provider asked us to wait."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str = "",
        status: int | None = None,
        code: str | None = None,
        body: str = "",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider, status=status, code=code, body=body)


class NotReady(ProviderError):
    """The data exists but is not ready yet (still syncing after a connect): try again later."""


class Unavailable(ProviderError):
    """The provider does not answer, or answers that it cannot serve now."""
