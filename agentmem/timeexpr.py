"""Time expressions in queries: "on 8 May, 2023", "in June 2023", "during 2022", "last week".

``parse(text, now)`` returns the half-open span [start, end) in unix seconds (UTC) of the first
expression it recognises, or None. Absolute dates name a day, a month or a year; relative ones
("yesterday", "last week", "3 days ago", "this month") are taken relative to ``now``. Recall uses the
span to rank items whose event time falls inside it higher (``Config.time_boost``); nothing is
filtered out, since a query's date may be when something was said or when it happened.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_MON = r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20|21)\d\d)"
_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}

_ABSOLUTE = [
    ("iso", re.compile(r"\b" + _YEAR + r"-(\d\d)-(\d\d)\b")),
    ("dmy", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MON},?\s+{_YEAR}\b", re.I)),
    ("mdy", re.compile(rf"\b{_MON}\s+{_DAY},?\s+{_YEAR}\b", re.I)),
    ("my", re.compile(rf"\b{_MON},?\s+(?:of\s+)?{_YEAR}\b", re.I)),
    ("y", re.compile(rf"\b(?:in|during|of|since|early|late|mid|throughout)\s+{_YEAR}\b", re.I)),
]
_AGO = re.compile(r"\b(\d+|a|an|one|two|three|four|five|six)\s+(days?|weeks?|months?|years?)\s+ago\b", re.I)
_LAST = re.compile(r"\b(yesterday|today|tonight|(?:last|this|past)\s+(?:week|weekend|month|year))\b", re.I)
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}

Span = tuple[float, float]


def _utc(y: int, m: int, d: int = 1) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def _absolute(kind: str, g: tuple[str, ...]) -> tuple[datetime, datetime]:
    if kind == "iso":
        start = _utc(int(g[0]), int(g[1]), int(g[2]))
        return start, start + timedelta(days=1)
    if kind in ("dmy", "mdy"):
        day, month = (g[0], g[1]) if kind == "dmy" else (g[1], g[0])
        start = _utc(int(g[2]), _MONTHS[month.lower()], int(day))
        return start, start + timedelta(days=1)
    if kind == "my":
        year, number = int(g[1]), _MONTHS[g[0].lower()]
        return _utc(year, number), _utc(year + (number == 12), number % 12 + 1)
    return _utc(int(g[0]), 1), _utc(int(g[0]) + 1, 1)


def _relative(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    m = _AGO.search(text)
    if m:
        n = _WORDS.get(m.group(1).lower()) or int(m.group(1))
        days = n * _UNITS[m.group(2).lower()]
        slack = max(1, days // 7)  # "3 weeks ago" is vaguer than "3 days ago"
        return day - timedelta(days=days + slack), day - timedelta(days=days - slack - 1)
    m = _LAST.search(text)
    if not m:
        return None
    phrase = " ".join(m.group(1).lower().split())
    if phrase in ("today", "tonight"):
        return day, day + timedelta(days=1)
    if phrase == "yesterday":
        return day - timedelta(days=1), day
    unit = phrase.split()[1]
    span = {"week": 7, "weekend": 7, "month": 31, "year": 366}[unit]
    if phrase.startswith("this"):
        return day - timedelta(days=span), day + timedelta(days=1)
    return day - timedelta(days=2 * span if phrase.startswith("last") else span), day + timedelta(days=1)


def parse(text: str, now: float | None = None) -> Span | None:
    """The span [start, end) (unix seconds, UTC) of the first time expression in ``text``, or None.
    Absolute dates win over relative ones; ``now`` (unix seconds) anchors relative ones."""
    for kind, pattern in _ABSOLUTE:
        for m in pattern.finditer(text):
            try:
                start, end = _absolute(kind, m.groups())
            except (ValueError, KeyError):
                continue  # "31 February": not a date
            return start.timestamp(), end.timestamp()
    if now is None:
        return None
    rel = _relative(text, datetime.fromtimestamp(now, tz=UTC))
    return None if rel is None else (rel[0].timestamp(), rel[1].timestamp())
