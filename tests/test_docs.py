"""Meta-tests: every hook has a test of its own and a documented section whose signature is
the hookspec's; every catalogue metric and span is documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rhythm_core.observability import hookspecs
from rhythm_core.observability.catalogue import METRICS, SPANS
from rhythm_core.observability.manager import HOOKS

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DOC = (ROOT / "docs" / "writing-a-plugin.md").read_text()
OBSERVABILITY_DOC = (ROOT / "docs" / "observability.md").read_text()


def spec_signature(hook: str) -> str:
    annotations = dict(getattr(hookspecs, hook).__annotations__)
    returns = annotations.pop("return")
    params = ", ".join(f"{name}: {kind}" for name, kind in annotations.items())
    return f"{hook}({params}) -> {returns}"


def test_hooks_list_is_the_hookspec_module() -> None:
    declared = {name for name in vars(hookspecs) if name.startswith("rhythm_")}
    assert declared == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_documented_section_with_its_signature(hook: str) -> None:
    documented = re.findall(rf"^### `({hook}\(.*\) -> .*)`$", PLUGIN_DOC, re.MULTILINE)
    assert documented == [spec_signature(hook)]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tree = ast.parse((ROOT / "tests" / "test_hooks.py").read_text())
    names = [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert any(name.startswith(f"test_{hook}") for name in names), hook


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_hookspec(hook: str) -> None:
    doc = getattr(hookspecs, hook).__doc__ or ""
    params = [p for p in getattr(hookspecs, hook).__annotations__ if p != "return"]
    for param in params:
        assert f":param {param}:" in doc, (hook, param)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.name)
def test_every_metric_is_documented(metric) -> None:
    row = next((line for line in OBSERVABILITY_DOC.splitlines()
                if line.startswith(f"| `{metric.name}` |")), None)
    assert row is not None, metric.name
    assert f"| {metric.kind} |" in row and f"`{metric.unit}`" in row


@pytest.mark.parametrize("span", [name for name, _ in SPANS])
def test_every_span_is_documented(span: str) -> None:
    assert f"| `{span}` |" in OBSERVABILITY_DOC


PLUGIN_SOURCES = sorted(
    path
    for pattern in ("plugins/*/src/**/*.py", "examples/*/src/**/*.py")
    for path in ROOT.glob(pattern)
)
PLUGIN_TESTS = sorted(
    path
    for pattern in ("plugins/*/tests/*.py", "examples/*/tests/*.py")
    for path in ROOT.glob(pattern)
)


def _core_imports(path: Path) -> set[str]:
    """The rhythm_core modules a file imports (``from rhythm_core import x`` counts as the
    package itself unless x is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rhythm_core"):
            found.add(node.module or "")
            if node.module == "rhythm_core":
                found |= {f"rhythm_core.{a.name}" for a in node.names
                          if (ROOT / "rhythm_core" / a.name).is_dir()
                          or (ROOT / "rhythm_core" / f"{a.name}.py").exists()}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rhythm_core")}
    return found


def test_plugins_import_only_the_public_surface() -> None:
    assert len(PLUGIN_SOURCES) > 20
    allowed = {"rhythm_core", "rhythm_core.observability"}
    wrong = {str(p.relative_to(ROOT)): sorted(_core_imports(p) - allowed) for p in PLUGIN_SOURCES}
    assert {p: m for p, m in wrong.items() if m} == {}


def test_plugin_tests_import_only_the_public_surface_and_the_testing_kit() -> None:
    assert len(PLUGIN_TESTS) > 20
    wrong = {}
    for path in PLUGIN_TESTS:
        extra = {m for m in _core_imports(path)
                 if m not in ("rhythm_core", "rhythm_core.observability")
                 and not m.startswith("rhythm_core.testing")}
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert wrong == {}


def test_the_public_plugin_surface_documents_each_name() -> None:
    import rhythm_core.observability as surface

    assert surface.__doc__ is not None
    for name in surface.__all__:
        assert getattr(surface, name) is not None
        assert f"``{name}``" in surface.__doc__, name
