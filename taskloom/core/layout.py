"""Where tasks are drawn: positions of a workflow's nodes, and a left-to-right layout.

Pure arithmetic over a ``taskloom/v1`` document (networkx for the graph), shared
by the designer (``taskloom.ui.web.designer.flowstate``) and the importers, which give every
task they convert a position. A task's ``position`` never changes behaviour.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx

__all__ = [
    "NODE_WIDTH",
    "NODE_HEIGHT",
    "X_GAP",
    "Y_GAP",
    "node_ids",
    "position_of",
    "graph_of",
    "layout_positions",
    "free_position",
    "display_positions",
    "freeze_positions",
    "rounded",
    "auto_layout",
]

NODE_WIDTH = 190
NODE_HEIGHT = 76  # typical rendered height; used for overlap tests
X_GAP = 260
Y_GAP = 120


def node_ids(doc: Mapping[str, Any]) -> list[str]:
    """The node id of each task: its id, or ``id~INDEX`` for a duplicate id (an invalid document)."""
    seen: set[str] = set()
    ids = []
    for i, task in enumerate(doc.get("tasks", [])):
        tid = str(task.get("id"))
        if tid in seen:
            tid = f"{tid}~{i}"
        seen.add(tid)
        ids.append(tid)
    return ids


def position_of(task: Mapping[str, Any]) -> tuple[float, float] | None:
    """A task's saved ``position`` as ``(x, y)``, or None when it has no usable one."""
    pos = task.get("position")
    if isinstance(pos, dict):
        x, y = pos.get("x"), pos.get("y")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
            return float(x), float(y)
    return None


def graph_of(doc: Mapping[str, Any], ids: Sequence[str] | None = None) -> nx.DiGraph:
    """The edges between known nodes as a networkx graph (dangling edges are left out)."""
    ids = node_ids(doc) if ids is None else ids
    graph = nx.DiGraph()
    graph.add_nodes_from(ids)
    known = set(ids)
    for edge in doc.get("edges", []):
        a, b = edge.get("from"), edge.get("to")
        if a in known and b in known:
            graph.add_edge(a, b)
    return graph


def layout_positions(doc: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Left-to-right positions: one column per topological generation, components stacked.

    Within a column, nodes are ordered by the mean row of their predecessors (a
    one-pass barycentre heuristic against crossings). A cyclic graph is laid
    out by its condensation.
    """
    ids = node_ids(doc)
    graph = graph_of(doc, ids)
    order = {nid: i for i, nid in enumerate(ids)}
    positions: dict[str, tuple[float, float]] = {}
    top = 0.0
    components = sorted(nx.weakly_connected_components(graph), key=lambda c: min(order[n] for n in c))
    for component in components:
        sub = graph.subgraph(component)
        if nx.is_directed_acyclic_graph(sub):
            layers = [sorted(g, key=order.__getitem__) for g in nx.topological_generations(sub)]
        else:
            cond = nx.condensation(sub)
            layers = [
                sorted((n for c in g for n in cond.nodes[c]["members"]), key=order.__getitem__)
                for g in nx.topological_generations(cond)
            ]
        row: dict[str, float] = {}
        for column in layers:
            def weight(n: str) -> tuple[float, int]:
                preds = [row[p] for p in sub.predecessors(n) if p in row]
                return (sum(preds) / len(preds) if preds else float(order[n]), order[n])

            column.sort(key=weight)
            for r, n in enumerate(column):
                row[n] = float(r)
        height = max(len(c) for c in layers)
        for x, column in enumerate(layers):
            offset = (height - len(column)) / 2
            for r, n in enumerate(column):
                positions[n] = (float(x * X_GAP), top + (offset + r) * Y_GAP)
        top += height * Y_GAP + Y_GAP / 2
    return positions


def _overlaps(x: float, y: float, occupied: Iterable[tuple[float, float]]) -> bool:
    return any(abs(x - ox) < NODE_WIDTH + 20 and abs(y - oy) < NODE_HEIGHT + 20 for ox, oy in occupied)


def free_position(occupied: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """A spot on the layout grid that overlaps no node: the first free cell, row by row, else below all."""
    occupied = list(occupied)
    if not occupied:
        return (0.0, 0.0)
    min_x = min(x for x, _ in occupied)
    min_y = min(y for _, y in occupied)
    max_x = max(x for x, _ in occupied)
    max_y = max(y for _, y in occupied)
    y = min_y
    while y <= max_y:
        x = min_x
        while x <= max_x + X_GAP:
            if not _overlaps(x, y, occupied):
                return (x, y)
            x += X_GAP
        y += Y_GAP
    return (min_x, max_y + Y_GAP)


def display_positions(doc: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Where each node is drawn: its saved position; tasks without one are laid out or put in free spots.

    Deterministic, so :func:`flow_to_doc` can tell a moved node from one the
    browser just reports where it was drawn (and never writes positions the
    user did not make).
    """
    ids = node_ids(doc)
    positions: dict[str, tuple[float, float]] = {}
    missing = []
    for nid, task in zip(ids, doc.get("tasks", [])):
        pos = position_of(task)
        if pos is None:
            missing.append(nid)
        else:
            positions[nid] = pos
    if missing:
        if not positions:
            return layout_positions(doc)
        for nid in missing:
            positions[nid] = free_position(positions.values())
    return positions


def freeze_positions(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` where every task without ``position`` gets the one it is drawn at."""
    out = copy.deepcopy(dict(doc))
    drawn = display_positions(out)
    for nid, task in zip(node_ids(out), out.get("tasks", [])):
        if position_of(task) is None:
            x, y = drawn[nid]
            task["position"] = {"x": rounded(x), "y": rounded(y)}
    return out


def rounded(value: float) -> int | float:
    """A coordinate as written to a document: one decimal, an int when whole."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def auto_layout(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with every task's ``position`` set by :func:`layout_positions`."""
    out = copy.deepcopy(dict(doc))
    positions = layout_positions(out)
    for nid, task in zip(node_ids(out), out.get("tasks", [])):
        x, y = positions[nid]
        task["position"] = {"x": rounded(x), "y": rounded(y)}
    return out
