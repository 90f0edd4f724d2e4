"""SillyTavern ``send_date`` / ``create_date`` parsing.

Five formats occur in real chats (sillytavern.md): unix milliseconds (number or digit string),
``"June 19, 2023 2:20pm"``, ``"2024-7-12@01h31m37s"``, ``"2024-6-5 @14h 56m 50s 682ms"`` and ISO 8601.
Epoch and zoned ISO values are returned as aware UTC datetimes; the humanized forms carry no zone
(SillyTavern wrote the user's local wall clock) and are returned naive.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["parse_send_date", "to_comparable"]

_MONTHS = {
    m: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for m in names
}

# "June 19, 2023 2:20pm" (also "June 19, 2023 2:20 PM", "Jun 19 2023 14:20")
_HUMAN = re.compile(
    r"^\s*([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?\s*$"
)
# "2024-7-12@01h31m37s" and "2024-6-5 @14h 56m 50s 682ms"
_AT = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*@\s*(\d{1,2})h\s*(\d{1,2})m\s*(\d{1,2})s(?:\s*(\d{1,3})ms)?\s*$")
_DIGITS = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")
_NUMBER = (int, float)
# What SillyTavern itself writes ("2024-7-12@01h31m37s"): a shorter match than _AT, which it is a
# case of, and the numbers read from a table (int() costs three dict look-ups).
_COMPACT = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})@(\d{1,2})h(\d{1,2})m(\d{1,2})s")
_INTS = (
    {str(i): i for i in range(1, 100)} | {f"{i:02d}": i for i in range(1, 10)} | {str(y): y for y in range(1970, 2100)}
)

# Epoch numbers below this are seconds (V3 cards use seconds); above, milliseconds.
_MS_THRESHOLD = 100_000_000_000


def _from_epoch(value: float) -> datetime | None:
    seconds = value / 1000.0 if abs(value) >= _MS_THRESHOLD else value
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        return None


def _safe(*parts: int) -> datetime | None:
    try:
        return datetime(*parts)  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        return None


def parse_send_date(value: Any) -> datetime | None:
    """Parse any SillyTavern date representation; None when it is not a recognisable date.

    Never raises: a chat with an odd date still imports, only without time-gap segmentation.
    """
    if isinstance(value, str):
        if len(value) > 64:
            return None
    elif value is None or isinstance(value, bool):
        return None
    elif isinstance(value, _NUMBER):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return _from_epoch(float(value))
    else:
        return None
    if "@" in value:
        # No digit string holds "@": SillyTavern's own format (the usual one) skips that test.
        m = _COMPACT.fullmatch(value)
        if m is not None:
            y, mo, d, h, mi, sec = m.groups()
            get = _INTS.get  # zero is left out, so "or int()" reads it (and any digit the table lacks)
            try:
                return datetime(
                    get(y) or int(y),
                    get(mo) or int(mo),
                    get(d) or int(d),
                    get(h) or int(h),
                    get(mi) or int(mi),
                    get(sec) or int(sec),
                )
            except (ValueError, OverflowError):
                return None
    elif _DIGITS.match(value):
        try:
            return _from_epoch(float(value))
        except (OverflowError, ValueError):
            return None
    m = _AT.match(value)
    if m:
        y, mo, d, h, mi, s, ms = m.groups()
        base = _safe(int(y), int(mo), int(d), int(h), int(mi), int(s))
        if base is not None and ms:
            base = base.replace(microsecond=int(ms) * 1000)
        return base
    m = _HUMAN.match(value)
    if m:
        mon, d, y, h, mi, s, ampm = m.groups()
        month = _MONTHS.get(mon.lower())
        if month is None:
            return None
        hour = int(h) if h else 0
        if ampm:
            if hour > 12:
                return None
            hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
        return _safe(int(y), month, int(d), hour, int(mi or 0), int(s or 0))
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def to_comparable(moment: datetime) -> datetime:
    """A naive datetime for gap arithmetic; aware values are taken at UTC.

    Mixing wall-clock and UTC values in one chat can shift a gap by the user's UTC offset; the
    segmenter's default threshold (hours) is far above that error for typical chats.
    """
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
