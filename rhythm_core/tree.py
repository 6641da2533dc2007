"""Execution trees read from PostgreSQL alone, drawn as a waterfall for the terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from .ids import execution_id_of

TREE = """
WITH RECURSIVE tree AS (
    SELECT e.* FROM executions e WHERE id = %s
    UNION ALL
    SELECT c.* FROM executions c JOIN tree t ON c.parent_id = t.id
)
SELECT id::text, parent_id::text, step, type, function_name, status, attempt, created_at,
       completed_at, error->>'type', error->>'message'
FROM tree
"""

TRACE = """
SELECT id::text, parent_id::text, step, type, function_name, status, attempt, created_at,
       completed_at, error->>'type', error->>'message'
FROM executions
WHERE (id = %(uuid)s AND trace_id = %(trace)s)
   OR (trace_id = %(trace)s AND trace_id <> translate(id::text, '-', ''))
ORDER BY created_at
"""
TRACE_OF = "SELECT trace_id FROM executions WHERE id = %s"


@dataclass(slots=True)
class Node:
    id: str
    parent_id: str | None
    step: list[int] | None
    type: str
    function_name: str
    status: str
    attempt: int
    created_at: datetime
    completed_at: datetime | None
    error_type: str | None
    error_message: str | None


def load(conn: psycopg.Connection[Any], root_id: str) -> list[Node]:
    return [Node(*row) for row in conn.execute(TREE, (root_id,))]


def load_trace(conn: psycopg.Connection[Any], trace_id: str) -> list[Node]:
    """Every execution of a trace, roots (no parent in the trace) first."""
    # the root that started the trace is found by its id, the rest by the partial index
    params = {"uuid": execution_id_of(trace_id), "trace": trace_id}
    nodes = [Node(*row) for row in conn.execute(TRACE, params)]
    ids = {n.id for n in nodes}
    return sorted(nodes, key=lambda n: n.parent_id in ids)


def _ms(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}m"


def render(nodes: list[Node], *, width: int = 32, now: datetime | None = None) -> str:
    """Draw the executions as trees (one per root): name, status, attempts, start offset from
    the earliest, duration, and a bar on a shared time axis."""
    if not nodes:
        return ""
    now = now or datetime.now(UTC)
    ids = {n.id for n in nodes}
    roots = [n for n in nodes if n.parent_id not in ids] or nodes[:1]
    children: dict[str | None, list[Node]] = {}
    for node in nodes:
        if node not in roots:
            children.setdefault(node.parent_id, []).append(node)
    start = min(n.created_at for n in nodes)
    end = max((n.completed_at or now) for n in nodes)
    total = max((end - start).total_seconds(), 1e-6)

    rows: list[tuple[str, Node]] = []

    def walk(node: Node, prefix: str, branch: str) -> None:
        rows.append((prefix + branch + f"{node.type} {node.function_name}", node))
        kids = sorted(children.get(node.id, []), key=lambda n: (n.step or [], n.created_at))
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(
                kid,
                prefix + ("" if not branch else ("   " if branch == "└─ " else "│  ")),
                "└─ " if last else "├─ ",
            )

    for root in roots:
        walk(root, "", "")
    name_width = max(len(label) for label, _ in rows)
    lines = []
    for label, node in rows:
        offset = (node.created_at - start).total_seconds()
        duration = ((node.completed_at or now) - node.created_at).total_seconds()
        left = int(offset / total * width)
        bar = " " * left + "█" * max(1, round(duration / total * width))
        line = (
            f"{label:<{name_width}}  {node.status:<9}  attempts {node.attempt:<2}  "
            f"+{_ms(offset):>7}  {_ms(duration):>7}  |{bar[:width]:<{width}}|"
        )
        if node.error_type and node.status != "completed":
            line += f"  {node.error_type}: {node.error_message}"
        elif node.error_type:
            line += f"  (retried after {node.error_type})"
        lines.append(line)
    return "\n".join(lines)


def render_spans(spans: list[Any], *, width: int = 24) -> str:
    """Draw spans (:class:`rhythm_core.observability.Span`) as a tree by parent id, with a
    time bar."""
    if not spans:
        return ""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Any]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    start = min(s.start_ns for s in spans)
    total = max(max((s.end_ns or s.start_ns) for s in spans) - start, 1)
    rows: list[tuple[str, Any]] = []

    def walk(span: Any, prefix: str, branch: str, child_prefix: str) -> None:
        rows.append((prefix + branch + span.name, span))
        kids = sorted(children.get(span.span_id, []), key=lambda s: s.start_ns)
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, prefix + child_prefix, "└─ " if last else "├─ ", "   " if last else "│  ")

    for root in sorted(children.get(None, []), key=lambda s: s.start_ns):
        walk(root, "", "", "")
    name_width = max(len(label) for label, _ in rows)
    lines = []
    for label, span in rows:
        duration = ((span.end_ns or span.start_ns) - span.start_ns) / 1e9
        left = int((span.start_ns - start) / total * width)
        bar = " " * left + "█" * max(1, round(duration * 1e9 / total * width))
        status = "ERROR " + (span.error_type or "") if span.status == "error" else ""
        lines.append(
            f"{label:<{name_width}}  {_ms(duration):>7}  |{bar[:width]:<{width}}|  "
            f"{span.span_id}  {status}".rstrip()
        )
    return "\n".join(lines)
