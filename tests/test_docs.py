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
