"""Execution trees read from PostgreSQL alone, drawn as a waterfall for the terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

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


def _ms(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}m"


def render(nodes: list[Node], *, width: int = 32, now: datetime | None = None) -> str:
    """Draw the tree rooted at ``nodes[0]``: name, status, attempts, start offset, duration, bar."""
    if not nodes:
        return ""
    now = now or datetime.now(UTC)
    children: dict[str | None, list[Node]] = {}
    for node in nodes[1:]:
        children.setdefault(node.parent_id, []).append(node)
    root = nodes[0]
    start = root.created_at
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
