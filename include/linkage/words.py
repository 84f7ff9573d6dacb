"""How counts read in the messages people see."""


def plural(count: int, noun: str) -> str:
    """`1 link`, `2 links`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
