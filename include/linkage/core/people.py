"""Who a person is, whichever way they reached linkage: the one definition of "the same person".

A decision or an approval names its person the way it came in: `airflow:<user>` (the Linkage view, its
API, an Airflow approver), `cli:<login>@<host>` (the command line: the OS login as Python's `getpass`
reports it), or a bare name (an Airflow approver as Required Actions reports it). Two of them are the
same person when `person()` is equal: the name without its channel or host, case-folded. Four eyes
(CONTRACT §3b) holds on that: nobody approves a decision they made themselves.
"""

from __future__ import annotations

CHANNELS = ("airflow:", "cli:")


def person(by: str) -> str:
    """`airflow:Alice` -> `alice`, `cli:alice@host` -> `alice`, `bob` -> `bob`."""
    name = by.strip()
    for channel in CHANNELS:
        if name.startswith(channel):
            name = name[len(channel):]
            if channel == "cli:":
                name = name.rsplit("@", 1)[0]
            break
    return name.strip().casefold()


def approvers(names: str | None) -> list[str]:
    """LINKAGE_APPROVERS as people (`alice, Bob` -> `alice`, `bob`); empty: anyone may approve."""
    return [person(name) for name in (names or "").split(",") if name.strip()]


def may_approve(names: str | None, by: str) -> bool:
    """Whether `by` is among LINKAGE_APPROVERS (anyone, when none are named)."""
    allowed = approvers(names)
    return not allowed or person(by) in allowed
