"""Keep credentials and PII out of every log line, report and alert.

Masking happens where text leaves the engine; the `RedactingFilter` on the
`linkage` logger is the last line of defence for anything that slipped past.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from linkage.core.normalize import normalize_phone

_URI_PASSWORD = re.compile(r"(mongodb(?:\+srv)?://[^:/@\s]+:)([^@\s]+)(@)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: A run of 10+ digits, spaces and dashes standing alone: a phone if it is one by CONTRACT §2, or written
#: with a leading `+`. Not after a dot: that is a decimal fraction or the microseconds of an Airflow run id in a
#: link (`...T15-11-01.507346-00-00/index.html`), never a phone. Other digits (a wire protocol's request ids,
#: counts, timestamps) are not personal data and stay as they are.
_PHONE = re.compile(r"(?<![\w.-])\+?\d[\d \-]{8,}\d(?![\w-])")


def mask_uri(uri: str) -> str:
    """`mongodb://user:secret@host` -> `mongodb://user:***@host`."""
    return _URI_PASSWORD.sub(r"\1***\3", uri)


def mask_phone(value: Any) -> str:
    digits = re.sub(r"\D", "", str(value))
    return f"***{digits[-2:]}" if len(digits) >= 4 else "***"


def mask_email(value: Any) -> str:
    local, _, domain = str(value).partition("@")
    return f"{local[:1]}***@{domain[:1]}***" if domain else "***"


def redact(text: str) -> str:
    """Mask anything in free text that looks like a password, email or phone."""
    text = mask_uri(text)
    text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    return _PHONE.sub(_masked_if_phone, text)


def _masked_if_phone(match: re.Match[str]) -> str:
    found = match.group()
    return mask_phone(found) if found.startswith("+") or normalize_phone(found) is not None else found


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through `redact` before it is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    target = logger or logging.getLogger("linkage")
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
