"""How counts read in the messages people see."""

from collections.abc import Mapping


def plural(count: int, noun: str) -> str:
    """`1 link`, `2 links`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def tally(counts: Mapping[str, int]) -> str:
    """`475 users, 1 invalid`: counts by name as a person reads them, the largest first."""
    return ", ".join(f"{n:,} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
