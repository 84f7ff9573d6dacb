"""The shape the code keeps: the engine needs no Airflow, no entry point names a step, the contract
lives in the repository and the README links nowhere outside it."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

from linkage.models import Step
from linkage.steps import REGISTRY

from helpers import ROOT

PACKAGE = ROOT / "include" / "linkage"


def test_the_engine_imports_no_airflow_and_nothing_from_plugins() -> None:
    """Every engine module (all but `linkage.airflow`) imported in a fresh interpreter: no Airflow loaded."""
    names = sorted(".".join(("linkage", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
                   for path in PACKAGE.rglob("*.py") if "airflow" not in path.relative_to(PACKAGE).parts)
    code = f"""
import importlib, json, sys
for name in {names!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("airflow", "linkage_plugin"))
print(json.dumps({{"modules": {names!r}, "loaded": loaded}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 25 and "linkage.pipeline" in result["modules"]
    assert result["loaded"] == []
    for path in PACKAGE.rglob("*.py"):
        if "airflow" not in path.relative_to(PACKAGE).parts:
            imported = {node.module or "" for node in ast.walk(ast.parse(path.read_text())) if
                        isinstance(node, ast.ImportFrom)} | {alias.name for node in ast.walk(ast.parse(
                            path.read_text())) if isinstance(node, ast.Import) for alias in node.names}
            assert not {name for name in imported if name.split(".")[0] in ("airflow", "plugins")}, path


def step_names_in(source: str) -> list[str]:
    """Where a module names a step: `Step.X` attributes or a step's name as a string."""
    tree = ast.parse(source)
    names = {step.value for step in Step}
    found = [f"Step.{node.attr}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Step"
             and node.attr in Step.__members__]
    found += [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names]
    return found


def test_pipeline_cli_and_dag_factory_never_name_a_step() -> None:
    for path in (PACKAGE / "pipeline.py", PACKAGE / "cli.py", PACKAGE / "airflow" / "dag_factory.py",
                 PACKAGE / "airflow" / "tasks.py", PACKAGE / "validation" / "gate.py"):
        assert step_names_in(path.read_text()) == [], path
    assert step_names_in("x = Step.ORDER_DELIVERY\ny = 'user_customer'") == ["Step.ORDER_DELIVERY", "user_customer"]


def test_every_step_is_registered_with_its_phases_and_collections() -> None:
    assert set(REGISTRY) == set(Step)
    for step, spec in REGISTRY.items():
        assert spec.step == step and spec.writes
        for kind in ("migrate", "reconcile"):
            names = [phase.name for phase in spec.phases(kind)]  # type: ignore[arg-type]
            assert names and len(names) == len(set(names))


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
