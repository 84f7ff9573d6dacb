"""Normalisers for the dirty values the app stored (docs/CONTRACT.md §2).

Each function takes whatever a document holds (any BSON type, or nothing) and
returns the canonical value, or ``None`` when the value is invalid. They never
raise: a bad value is a category, not a crash.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")
_NON_DIGITS = re.compile(r"[^0-9]")


def is_unset(value: Any) -> bool:
    """A link field counts as unset when it is missing, null or the empty string."""
    return value is None or value == ""


def is_key(value: Any) -> TypeGuard[str]:
    """An application key (`id`, `customer_id`, ...) is a non-blank string."""
    return isinstance(value, str) and value.strip() != ""


def normalize_date(value: Any, tz: ZoneInfo) -> date | None:
    """The calendar day a `delivery_date` means, in the business timezone.

    BSON datetimes are UTC instants (pymongo hands them over naive), so they are
    moved to ``tz`` before taking the day. A datetime string with an offset is
    moved likewise; one without an offset already names a local wall-clock time.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(tz).date()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
        if _DATETIME.fullmatch(text):
            parsed = datetime.fromisoformat(text)
            return parsed.astimezone(tz).date() if parsed.tzinfo else parsed.date()
    except ValueError:
        return None
    return None


def normalize_phone(value: Any) -> str | None:
    """A 10-digit Indian mobile number, or None.

    Integers are formatted as digits first; booleans are not numbers here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    digits = _NON_DIGITS.sub("", value)
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) == 10 and digits[0] in "6789":
        return digits
    return None


def normalize_email(value: Any) -> str | None:
    """Trimmed, lower-cased address with exactly one `@` and a dot after it."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    local, sep, domain = email.partition("@")
    if not sep or "@" in domain or not local or "." not in domain:
        return None
    return email
