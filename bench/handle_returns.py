"""Issue 31's measure of tangling: follow the `Linkage` handle through one `migrate` by its calls, and count how
often the calls come back into a unit (a module, or a package) they had already left.

    python -m bench.handle_returns [--customers 300] [--every-call]

A small migrate (order_delivery and user_customer on `seed(customers=300)`) runs on the embedded server under
`sys.setprofile`, which keeps the stack of linkage frames. Every call of a linkage function that holds the handle
(an argument or `self` that is the run's `Linkage`) is counted; its unit is its module, or its package (the
module's first component under `linkage`: `linkage.stages.apply` -> `stages`). A *return* is such a call into a
unit that is already on the stack below another unit (A -> B -> A: the stack comes back into a unit it had left;
`distinct_returns`: the distinct (caller, unit) pairs); a *climb* is a return from a lower layer to a higher one
(the layers of `.importlinter`; a module takes its package's). `--every-call` counts every linkage call.
It runs on a tree from before the package move as well (the old module names are tried when the new ones are
missing; there each module counts as its own package): `git worktree add /tmp/before <commit>;
PYTHONPATH=/tmp/before/include python -m bench.handle_returns`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: (after the move, before it): where each thing the measure needs lives.
WHERE = {"server": ("linkage.dev.server", "linkage.server"), "seed": ("linkage.dev.seed", "linkage.seed"),
         "settings": ("linkage.core.settings", "linkage.settings"),
         "session": ("linkage.run.session", "linkage.handle"), "params": ("linkage.run.params", "linkage.params"),
         "executor": ("linkage.stages.executor", "linkage.runner")}
#: The packages, top first (.importlinter); a module before the move is placed by where the move sends it.
LAYERS = ["airflow", "cli", "report", "stages", "review|validation", "run", "dev", "relations", "engine", "store",
          "mongo", "core"]


def load(name: str) -> Any:
    new, old = WHERE[name]
    try:
        return importlib.import_module(new)
    except ModuleNotFoundError:
        return importlib.import_module(old)


def package_of(module: str) -> str:
    """`linkage.stages.apply` -> `stages`: the package a module belongs to (its first component under linkage)."""
    return module.removeprefix("linkage.").split(".")[0]


def rank(package: str) -> int:
    """A package's height (top highest); 0 for a name of no layer (a module of a tree from before the move)."""
    return next((len(LAYERS) - i for i, layer in enumerate(LAYERS) if package in layer.split("|")), 0)


def walk(customers: int, every: bool = False) -> list[list[str]]:
    """The call stacks (linkage frames only, outermost first) of every call that holds the handle (or, with
    `every`, of every linkage call), over one migrate."""
    Linkage = load("session").Linkage
    with tempfile.TemporaryDirectory() as home:
        server = load("server").EmbeddedServer(load("server").free_port(), Path(home) / "db").start()
        try:
            settings = load("settings").Settings(mongo_uri=server.uri, db="app", home=Path(home) / "linkage")
            lk = Linkage(settings)
            load("seed").seed(lk.db, customers=customers, seed_value=11)
            stacks: list[list[str]] = []
            stack: list[tuple[FrameType, str]] = []

            def profile(frame: FrameType, event: str, _arg: object) -> None:
                module = frame.f_globals.get("__name__", "")
                if not module.startswith("linkage."):
                    return
                if event == "call":
                    stack.append((frame, module))
                    if every or any(value is lk for value in frame.f_locals.values()):
                        stacks.append([name for _, name in stack])
                elif event == "return" and stack and stack[-1][0] is frame:
                    stack.pop()

            sys.setprofile(profile)
            try:
                load("executor").migrate(lk, load("params").MigrationParams(), "handle_returns")
            finally:
                sys.setprofile(None)
            return stacks
        finally:
            server.stop()


def returns(stacks: list[list[str]], unit: Any, layer: Any) -> dict[str, int]:
    """A return: a call into a unit already on the stack below another unit (A -> B -> A), counted per call;
    a climb: a return whose caller is in a lower layer than the unit it comes back to."""
    entered: set[str] = set()
    back = climbs = 0
    edges: set[tuple[str, str]] = set()
    for stack in stacks:
        units = [unit(module) for module in stack]
        entered |= set(units)
        here, caller = units[-1], units[-2] if len(units) > 1 else None
        if caller is not None and here != caller and here in units[:-1]:
            back += 1
            climbs += layer(here) > layer(caller)
            edges.add((caller, here))
    return {"units": len(entered), "calls": len(stacks), "returns": back, "climbs": climbs,
            "distinct_returns": len(edges), "pairs": sorted(f"{a} -> {b}" for a, b in edges)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--every-call", action="store_true",
                        help="every linkage call, not only those holding the handle")
    args = parser.parse_args()
    stacks = walk(args.customers, args.every_call)
    result = {"by_module": returns(stacks, lambda m: m, lambda m: rank(package_of(m))),
              "by_package": returns(stacks, package_of, rank)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
