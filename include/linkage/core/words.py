"""How counts read in the messages people see."""

from collections.abc import Mapping


def plural(count: int, noun: str) -> str:
    """`1 link`, `2 links`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def tally(counts: Mapping[str, int]) -> str:
    """`475 users, 1 invalid`: counts by name as a person reads them, the largest first."""
    return ", ".join(f"{n:,} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def size(n: int | None) -> str:
    """`36 KB`, `3.3 MB`, `1.2 GB`: bytes as people read them (a small backup is not `0.0 MB`)."""
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e3:,.0f} KB" if n >= 1e3 else f"{n} B"
