"""The shape the code keeps: subpackages that are layers importing only downwards, the engine without Airflow,
relations spelt out in their own step modules only, a run's sequence in one place, small modules and functions,
the contract in the repository and a README that links nowhere outside it."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linkage.core.models import RunKind
from linkage.relations import REGISTRY, Registry, RegistryError, StepSpec
from linkage.relations.checks import Check
from linkage.relations.order_delivery import OrderDelivery
from linkage.run.plan import Plan, Role, Stage, StageName, run_plan

from helpers import ROOT

PACKAGE = ROOT / "include" / "linkage"

#: The subpackages, top first, as `.importlinter`'s layers contract lists them (`review | validation`: two
#: independent layers side by side).
LAYERS = ["airflow", "cli", "report", "stages", "review | validation", "run", "dev", "relations", "engine", "store",
          "mongo", "core"]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__").removesuffix(
        "__init__") or "linkage"


def imports_of(path: Path) -> set[str]:
    """Every `linkage.*` module a file imports, anywhere in it (a function-level import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module == "linkage":
            names = [f"linkage.{alias.name}" for alias in node.names]
        found |= {name.removeprefix("linkage.") for name in names if name.startswith("linkage.")}
    return found


def engine_modules() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if "airflow" not in path.relative_to(PACKAGE).parts]


def test_no_module_of_the_engine_sits_at_the_package_root() -> None:
    """The folders show the architecture: the root holds `__init__` and the subpackages, nothing else."""
    assert sorted(path.name for path in PACKAGE.glob("*.py")) == ["__init__.py"]
    packages = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
    assert packages == sorted(name for layer in LAYERS for name in layer.split(" | "))


def test_every_package_says_what_it_is_for() -> None:
    for marker in PACKAGE.rglob("__init__.py"):
        if "docs_assets" not in marker.parts:
            assert ast.get_docstring(ast.parse(marker.read_text())), f"{marker.parent} has no docstring"


def lint_imports(root: Path, package: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over `package` (its parent first on the path), with the repository's `.importlinter`."""
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config",
                           str(ROOT / ".importlinter")], capture_output=True, text=True, cwd=root, env=env)


def test_the_layers_are_the_packages_and_each_imports_only_those_below_it(tmp_path: Path) -> None:
    """import-linter's layers contract (`.importlinter`, exhaustive: every subpackage is placed) is kept, and it
    lists the layers this test names; in a copy of the package, one upward import breaks it."""
    config = (ROOT / ".importlinter").read_text()
    assert "exhaustive = true" in config
    listed = config.split("layers =")[1].split("exhaustive")[0].split()
    assert " ".join(listed) == " ".join(LAYERS)
    kept = lint_imports(ROOT, PACKAGE)
    assert kept.returncode == 0 and "1 kept, 0 broken" in kept.stdout, kept.stdout[-3000:]
    copy = tmp_path / "include" / "linkage"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "docs_assets"))
    with (copy / "core" / "words.py").open("a") as words:
        words.write("\nfrom linkage.stages import executor  # noqa: E402,F401\n")
    broken = lint_imports(tmp_path, copy)
    assert broken.returncode != 0 and "linkage.core.words -> linkage.stages.executor" in broken.stdout, broken.stdout


def test_no_linkage_import_climbs_a_layer() -> None:
    """The same rule read from the source directly (a function-level import is still a dependency), so the
    check does not rest on the linter's reading alone."""
    rank = {name: i for i, layer in enumerate(reversed(LAYERS)) for name in layer.split(" | ")}
    for path in PACKAGE.rglob("*.py"):
        here = module_name(path).split(".")[0]
        if here == "linkage":
            continue
        for imported in imports_of(path):
            there = imported.split(".")[0]
            assert rank[there] <= rank[here], f"linkage.{module_name(path)} imports linkage.{imported} from above"
            assert {here, there} != {"review", "validation"}, f"linkage.{module_name(path)} imports {imported}"


def test_the_engine_imports_no_airflow_and_nothing_from_plugins() -> None:
    """Every engine module (all but `linkage.airflow`) imported in a fresh interpreter: no Airflow loaded."""
    names = sorted(f"linkage.{module_name(path)}".removesuffix(".linkage") for path in engine_modules())
    code = f"""
import importlib, json, sys
for name in {names!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("airflow", "linkage_plugin"))
print(json.dumps({{"modules": {names!r}, "loaded": loaded}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 40 and "linkage.stages.executor" in result["modules"]
    assert result["loaded"] == []
    for path in engine_modules():
        imported = {node.module or "" for node in ast.walk(ast.parse(path.read_text())) if
                    isinstance(node, ast.ImportFrom)} | {alias.name for node in ast.walk(ast.parse(
                        path.read_text())) if isinstance(node, ast.Import) for alias in node.names}
        assert not {name for name in imported if name.split(".")[0] in ("airflow", "plugins")}, path


RELATION_NAMES = ("USERS", "CUSTOMERS", "ORDERS", "DELIVERIES", "ORDER_LINK", "USER_LINK", "CUSTOMER_LINK")


def relation_mentions(source: str) -> list[str]:
    """Where a module names a relation: a step's name as a string, or one relation's collection or link field."""
    tree = ast.parse(source)
    steps = set(REGISTRY)
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in steps]
    found += [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              and node.module == "linkage.core.app_schema" for alias in node.names if alias.name in RELATION_NAMES]
    return found


def test_a_relation_is_spelt_out_in_its_step_module_only() -> None:
    """Outside `relations/` (the steps, their matching rules, rules and checks), the schema and the seed (which
    writes the app's data), no module names a step or a relation's collections: they iterate the registry."""
    allowed = {"core.app_schema", "dev.seed"}
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if module.startswith("relations") or module in allowed:
            continue
        assert relation_mentions(path.read_text()) == [], path
    assert relation_mentions("from linkage.core.app_schema import USERS\nx = 'order_delivery'") == ["order_delivery",
                                                                                                "USERS"]


def test_the_runs_sequence_is_written_in_the_plan_alone() -> None:
    """Only `plan.py` lays out the stages in order; the executors look a stage up by its name."""
    names = {f"StageName.{name.name}" for name in StageName}
    for path in PACKAGE.rglob("*.py"):
        mentioned = [f"StageName.{node.attr}" for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                     and node.value.id == "StageName"]
        if module_name(path) != "run.plan":
            assert len(mentioned) == len(set(mentioned)), f"{path} names a stage twice"
        assert set(mentioned) <= names
    plan = run_plan(RunKind.MIGRATE)
    # the design's order: the whole backup first, then each relation planned and written by its own backfill
    assert [stage.id for stage in plan.stages] == [
        "preflight", "acquire_lock", "backup", "create_indexes", "backfill_order_delivery", "backfill_user_customer",
        "validate", "conclude", "suggest", "housekeeping", "report", "release_lock"]
    assert not any(stage.backs_up for stage in plan.stages)
    # people's decisions first, then the nightly repair
    assert run_plan(RunKind.RECONCILE, ["user_customer"]).backfills[0].phases[:3] == (
        "decided", "repair_from_users", "repair_from_customers")
    # a decisions run is approved before it takes its lease, and runs the decided phase alone
    # and, as a reconcile, backs up each relation's own writes between planning and writing them
    for kind in (RunKind.DECISIONS, RunKind.RECONCILE):
        assert [stage.id for stage in run_plan(kind).stages] == [
            "preflight", *(["approve"] if kind == RunKind.DECISIONS else []), "acquire_lock", "create_indexes",
            "backfill_order_delivery", "backfill_user_customer", "validate", "conclude", "suggest", "housekeeping",
            "report", "release_lock"]
        assert all(stage.backs_up for stage in run_plan(kind).backfills)
    assert {stage.phases for stage in run_plan(RunKind.DECISIONS).backfills} == {("decided",)}


def test_a_plan_is_checked_when_it_is_made() -> None:
    work = Stage(name=StageName.BACKUP, skipped_by_dry_run=True)
    lock, release = Stage(name=StageName.ACQUIRE_LOCK, role=Role.SETUP), Stage(name=StageName.RELEASE_LOCK,
                                                                                 role=Role.TEARDOWN)
    with pytest.raises(ValueError, match="takes its lease once, before anything that writes"):
        Plan(kind=RunKind.MIGRATE, stages=(work, lock, release))
    with pytest.raises(ValueError, match="ends by releasing its lease"):
        Plan(kind=RunKind.MIGRATE, stages=(lock, work))
    with pytest.raises(ValueError, match="names a stage twice"):
        Plan(kind=RunKind.MIGRATE, stages=(lock, work, work, release))
    backfill = Stage(name=StageName.BACKFILL, step="order_delivery", phases=("link",))
    with pytest.raises(ValueError, match="backfill_order_delivery writes before a backup of what it writes"):
        Plan(kind=RunKind.MIGRATE, stages=(lock, backfill, work, release))
    with pytest.raises(ValueError, match="takes its lease once, before anything that writes"):
        Plan(kind=RunKind.RECONCILE, stages=(backfill.model_copy(update={"backs_up": True}), lock, release))
    with pytest.raises(ValueError, match="backs up again what the run backed up whole"):
        Plan(kind=RunKind.MIGRATE, stages=(lock, work, backfill.model_copy(update={"backs_up": True}), release))
    with pytest.raises(ValueError, match="only a backfill, names a step and its phases, and backs up on its own"):
        Plan(kind=RunKind.MIGRATE, stages=(lock, work.model_copy(update={"backs_up": True}), release))
    assert Plan(kind=RunKind.MIGRATE, stages=(lock, work, backfill, release))  # backed up whole, then written


def toy_spec(name: str, **overrides: object) -> StepSpec:
    """A copy of the order-delivery step under another id, its rules renamed to match, with `overrides`."""
    rules = {rule.name: rule.model_copy(update={"name": f"{name}_{rule.name}", "step": name})
             for rule in OrderDelivery.rules}
    checks = tuple(Check(c.name, tuple(rules[r.name] for r in c.measures), c.walk, c.counts)
                   for c in OrderDelivery.checks)
    attributes = {"id": name, "rules": tuple(rules.values()), "checks": checks, **overrides}
    return type(name, (OrderDelivery,), attributes)()


def test_the_registry_refuses_a_step_it_cannot_judge_when_it_is_registered() -> None:
    assert len(Registry(toy_spec("toy"))) == 1  # the copy itself is well formed
    with pytest.raises(RegistryError, match="step order_delivery is registered twice"):
        Registry(OrderDelivery(), OrderDelivery())
    with pytest.raises(RegistryError, match="toy has no phases for a migrate run"):
        Registry(toy_spec("toy", phases=lambda self, kind: []))
    with pytest.raises(RegistryError, match="rule order_refs_dangling is declared twice"):
        Registry(OrderDelivery(), toy_spec("toy", rules=OrderDelivery.rules))
    with pytest.raises(RegistryError, match="no check counts the links of delivery_statuses.order_id"):
        Registry(toy_spec("toy", checks=()))
    unmeasured = toy_spec("toy")
    with pytest.raises(RegistryError, match="rule toy_order_links_not_single must be measured by exactly one"):
        Registry(toy_spec("toy", checks=(Check("dangling only", (unmeasured.rules[0],), unmeasured.checks[0].walk,
                                               unmeasured.checks[0].counts),)))
    with pytest.raises(RegistryError, match="measures rule order_refs_dangling, which the step does not declare"):
        Registry(toy_spec("toy", checks=OrderDelivery.checks))
    with pytest.raises(RegistryError, match="threshold min_order_coverage is another step's"):
        Registry(OrderDelivery(), toy_spec("toy"))


def test_modules_and_functions_stay_small() -> None:
    """The largest module in include/ is under 300 lines and no function is over 60 (the README names the
    exceptions: the vendored Data Docs assets are not code)."""
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) < 300, f"{path}: {len(lines)} lines"
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 60, f"{path}:{node.lineno} {node.name} is {length} lines"


def test_the_readme_links_nowhere_outside_the_repository_and_the_contract_is_in_it() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", readme)
    assert targets, "the README links its documents"
    for target in targets:
        path = target.split("#")[0]
        assert not re.match(r"[a-z]+://", target), f"the README links outside the repository: {target}"
        if path:
            resolved = (ROOT / path).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), target
    assert "shared/SPEC.md" not in readme
    contract = (ROOT / "docs" / "CONTRACT.md").read_text()
    for section in ("Collections", "Normalisation", "Linking rules", "Categories", "Indexes", "Safety",
                    "Validation", "Reconciliation", "Interfaces", "Where linkage differs"):
        assert section in contract, section
    for path in PACKAGE.rglob("*.py"):
        assert "SPEC §" not in path.read_text(), f"{path} cites the external SPEC: cite docs/CONTRACT.md"


def test_the_architecture_page_draws_the_packages_as_the_code_imports_them() -> None:
    """docs/architecture.md's diagram is `scripts/architecture.py`'s drawing of today's imports."""
    done = subprocess.run([sys.executable, "scripts/architecture.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert "stages --> run" in page and "core --> " not in page  # the lowest layer imports nothing above it
