"""The engine with its instrumentation path removed, for the zero-cost comparison.

Builds copies of ``rhythm_core.worker`` and ``rhythm_core.reporter`` from their syntax trees
with every ``if`` whose test is one of :data:`GUARDS` (and that has no ``else``) deleted, so
the comparison is against the same code minus exactly those blocks. The number deleted is
checked against :data:`EXPECTED`: when the engine's guards change, this fails and names
them, rather than comparing the engine with itself.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from types import ModuleType
from typing import Any

from rhythm_core import reporter, worker

GUARDS = (
    "self._instruments is not None",  # claimed rows to the instruments; the last flush
    "record is not None",  # an attempt's timings (_call), a failure's cause (_execute)
    "row.record is not None",  # decoding and encoding times
    "record is not None and record.trace_problem is not None",  # an unusable carrier
    "self._observer is not None",  # the reporter tells the instruments what it wrote
)
EXPECTED = 9


class _Strip(ast.NodeTransformer):
    removed = 0

    def visit_If(self, node: ast.If) -> Any:
        if ast.unparse(node.test) in GUARDS and not node.orelse:
            self.removed += 1
            return None
        return self.generic_visit(node)


def _strip(module: ModuleType, name: str, replace: dict[str, str]) -> tuple[ModuleType, int]:
    source = inspect.getsource(module)
    for old, new in replace.items():
        source = source.replace(old, new)
    tree = ast.parse(source)
    stripper = _Strip()
    tree = ast.fix_missing_locations(stripper.visit(tree))
    # a function body left empty by the stripping gets a pass
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and not block and field == "body":
                block.append(ast.Pass())
    spec = importlib.util.spec_from_loader(f"rhythm_core.{name}", loader=None)
    assert spec is not None
    bare = importlib.util.module_from_spec(spec)
    bare.__package__ = "rhythm_core"
    sys.modules[bare.__name__] = bare
    exec(compile(tree, f"<{name}>", "exec"), bare.__dict__)
    return bare, stripper.removed


def bare_worker_class() -> tuple[type, int]:
    """The Worker class with the instrumentation removed, and how many blocks were removed."""
    _, from_reporter = _strip(reporter, "_bare_reporter", {})
    use_bare_reporter = {"from .reporter import Reporter": "from ._bare_reporter import Reporter"}
    bare, from_worker = _strip(worker, "_bare_worker", use_bare_reporter)
    removed = from_reporter + from_worker
    if removed != EXPECTED:
        raise RuntimeError(
            f"bench/bare.py removed {removed} instrumentation blocks, expected {EXPECTED}: the "
            f"engine's guards changed; update GUARDS and EXPECTED ({', '.join(GUARDS)})"
        )
    return bare.Worker, removed
