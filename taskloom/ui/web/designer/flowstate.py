"""The document as a streamlit-flow graph, and the graph the browser returns as a document.

:func:`doc_to_flow` draws each task as a node (left target handle, right
source handle, markdown content with user text escaped, a red outline and a
"⚠" line when validation has something to say about it) and each edge as an
arrow coloured by its condition. :func:`flow_to_doc` applies what the
browser sends back: moved nodes, deleted nodes (their dangling edges go too),
deleted edges and new connections, refusing a connection that would close a
cycle. :func:`auto_layout` (from :mod:`taskloom.core.layout`) places the graph left to right.

The flow state the browser holds is stamped with a revision (``data.rev``
of every node and edge): a value whose revision is older than the last
state sent is from before the browser applied it and is ignored
(:func:`is_current`), so a late echo can never undo an edit.
"""

from __future__ import annotations

import copy
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx

from taskloom.core.layout import (
    NODE_HEIGHT,
    NODE_WIDTH,
    X_GAP,
    Y_GAP,
    auto_layout,
    display_positions,
    free_position,
    freeze_positions,
    layout_positions,
    node_ids,
)
from taskloom.core.layout import position_of as _position
from taskloom.core.layout import rounded as _rounded
from taskloom.core.registry import Registry
from taskloom.core.validation import Issue

from taskloom.ui.web.designer.docops import edge_keys
from taskloom.ui.web.designer.palette import icon_for

__all__ = [
    "NODE_WIDTH",
    "NODE_HEIGHT",
    "X_GAP",
    "Y_GAP",
    "EDGE_COLORS",
    "md_escape",
    "node_ids",
    "display_positions",
    "layout_positions",
    "auto_layout",
    "freeze_positions",
    "free_position",
    "issues_by_place",
    "node_content",
    "doc_to_flow",
    "flow_signature",
    "stamp",
    "same_structure",
    "revisions",
    "is_current",
    "FlowUpdate",
    "flow_to_doc",
    "find_cycle_path",
]


EDGE_COLORS = {
    "success": "#2e7d32",
    "failure": "#c62828",
    "always": "#757575",
    "true": "#1565c0",
    "false": "#ef6c00",
}

_CATEGORY_BACKGROUND = {
    "Run code": "#eef4ff",
    "Control flow": "#f5f0ff",
    "Connect": "#eafaf4",
    "Data": "#fff8e6",
    "Files": "#f3f7ec",
    "Notify": "#fff0f3",
    "Code": "#eef7f9",
}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&\"'=:^%@])")


def md_escape(text: Any) -> str:
    """``text`` as literal Markdown: every punctuation that could format, link, embed HTML or math is escaped."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


# -- ids and positions: taskloom.core.layout (the importers lay out what they convert too) ----


# -- rendering -----------------------------------------------------------------

_TASK_PATH = re.compile(r"^/tasks/(\d+)(?:/|$)")
_EDGE_PATH = re.compile(r"^/edges/(\d+)(?:/|$)")


def issues_by_place(issues: Iterable[Issue]) -> tuple[dict[int, list[Issue]], dict[int, list[Issue]], list[Issue]]:
    """Issues grouped by task index, by edge index, and the rest."""
    tasks: dict[int, list[Issue]] = {}
    edges: dict[int, list[Issue]] = {}
    rest: list[Issue] = []
    for issue in issues:
        if m := _TASK_PATH.match(issue.path):
            tasks.setdefault(int(m.group(1)), []).append(issue)
        elif m := _EDGE_PATH.match(issue.path):
            edges.setdefault(int(m.group(1)), []).append(issue)
        else:
            rest.append(issue)
    return tasks, edges, rest


def node_content(task: Mapping[str, Any], registry: Registry | None, issues: Sequence[Issue] = ()) -> str:
    """The Markdown a node shows: icon and title (or id), id and type, and a "⚠" line with the problems.

    All user text is escaped; the problems' full text is in the ``title``
    attribute of the warning (shown on hover).
    """
    type_name = str(task.get("type", ""))
    task_type = registry.get(type_name) if registry is not None else None
    icon = icon_for(task_type.icon if task_type else "", type_name)
    tid = str(task.get("id", ""))
    title = task.get("title")
    has_title = isinstance(title, str) and bool(title.strip())
    sub = f"{md_escape(tid)} · {md_escape(type_name)}" if has_title else md_escape(type_name)
    head = f"{icon} **{md_escape(title if has_title else tid)}**"
    lines = [head, sub]
    if issues:
        tip = "\n".join(f"{i.path}: {i.message}" for i in issues)
        first = issues[0].message
        first = first if len(first) <= 70 else first[:67] + "..."
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        lines.append(
            f'<span title="{html.escape(tip, quote=True)}">⚠ {count}</span>: {md_escape(first)}'
        )
    return "\n\n".join(lines)


def _node_style(category: str, invalid: bool) -> dict[str, Any]:
    style: dict[str, Any] = {
        "width": NODE_WIDTH,
        "height": "auto",
        "fontSize": "12px",
        "textAlign": "left",
        "padding": "6px 8px",
        "borderRadius": "6px",
        "background": _CATEGORY_BACKGROUND.get(category, "#f7f7f7"),
        "color": "#1f2328",
        "border": "1px solid #90a4ae",
    }
    if invalid:
        style["border"] = "2px solid #d32f2f"
        style["boxShadow"] = "0 0 0 3px rgba(211, 47, 47, 0.25)"
    return style


def doc_to_flow(
    doc: Mapping[str, Any], issues: Iterable[Issue] = (), registry: Registry | None = None
) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}`` as streamlit-flow takes them (``StreamlitFlowNode.asdict()`` shape).

    Nodes are editable (draggable, connectable, deletable, selectable) with
    left/right handles; edges are deletable arrows labelled and coloured by
    ``on``. Edges naming a missing task are not drawn (validation lists them).
    """
    by_task, by_edge, _ = issues_by_place(issues)
    ids = node_ids(doc)
    positions = display_positions(doc)
    first_id = {}
    for nid, task in zip(ids, doc.get("tasks", [])):
        first_id.setdefault(task.get("id"), nid)
    nodes = []
    for i, (nid, task) in enumerate(zip(ids, doc.get("tasks", []))):
        task_type = registry.get(str(task.get("type"))) if registry is not None else None
        mine = by_task.get(i, [])
        x, y = positions[nid]
        nodes.append({
            "id": nid,
            "position": {"x": x, "y": y},
            "data": {"content": node_content(task, registry, mine), "task": task.get("id"), "invalid": bool(mine)},
            "type": "default",
            "sourcePosition": "right",
            "targetPosition": "left",
            "hidden": False,
            "selected": False,
            "dragging": False,
            "draggable": True,
            "selectable": True,
            "connectable": True,
            "resizing": False,
            "deletable": True,
            "zIndex": 0,
            "focusable": True,
            "style": _node_style(task_type.category if task_type else "", bool(mine)),
        })
    edges = []
    for i, (key, edge) in enumerate(zip(edge_keys(doc), doc.get("edges", []))):
        source, target = first_id.get(edge.get("from")), first_id.get(edge.get("to"))
        if source is None or target is None:
            continue
        on = edge.get("on", "success")
        color = EDGE_COLORS.get(on, "#9e9e9e")
        bad = bool(by_edge.get(i))
        edges.append({
            "id": key,
            "source": source,
            "target": target,
            "type": "default",
            "markerStart": {},
            "markerEnd": {"type": "arrowclosed", "color": color},
            "hidden": False,
            "animated": False,
            "selected": False,
            "deletable": True,
            "focusable": True,
            "zIndex": 0,
            "label": f"⚠ {on}" if bad else str(on),
            "labelStyle": {},
            "labelShowBg": True,
            "labelBgStyle": {"fill": color, "fillOpacity": 0.18},
            "style": {"stroke": color, "strokeWidth": 2, **({"strokeDasharray": "6 3"} if bad else {})},
            "data": {"on": on},
        })
    return {"nodes": nodes, "edges": edges}


def flow_signature(flow: Mapping[str, Any]) -> str:
    """What the browser must be sent again when it changes: everything but positions and revisions."""
    def strip(item: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in item.items() if k != "position"}
        if isinstance(out.get("data"), dict):
            out["data"] = {k: v for k, v in out["data"].items() if k != "rev"}
        return out

    return json.dumps(
        {"nodes": [strip(n) for n in flow["nodes"]], "edges": [strip(e) for e in flow["edges"]]},
        sort_keys=True,
    )


def stamp(flow: Mapping[str, Any], rev: int) -> dict[str, Any]:
    """``flow`` with ``data.rev`` set on every node and edge."""
    return {
        "nodes": [{**n, "data": {**n.get("data", {}), "rev": rev}} for n in flow["nodes"]],
        "edges": [{**e, "data": {**e.get("data", {}), "rev": rev}} for e in flow["edges"]],
    }


def same_structure(raw: Mapping[str, Any], flow: Mapping[str, Any]) -> bool:
    """Whether ``raw`` (from the browser) has exactly the nodes and edges of ``flow`` (by id)."""
    def ids(items: Any) -> set[Any]:
        return {item.get("id") for item in items or [] if isinstance(item, dict)}

    return ids(raw.get("nodes")) == ids(flow["nodes"]) and ids(raw.get("edges")) == ids(flow["edges"])


def revisions(raw: Mapping[str, Any]) -> set[Any]:
    """The revisions stamped on the nodes and edges of a state from the browser."""
    found = set()
    for item in [*(raw.get("nodes") or []), *(raw.get("edges") or [])]:
        data = item.get("data") if isinstance(item, dict) else None
        if isinstance(data, dict) and "rev" in data:
            found.add(data["rev"])
    return found


def is_current(raw: Mapping[str, Any], rev: int | None, acked: int | None = None) -> bool:
    """Whether ``raw`` reflects the graph last sent (revision ``rev``).

    A state with stamped nodes or edges is current when they all carry ``rev``.
    A state with nothing stamped (an empty canvas) is current only when the
    browser had already acknowledged ``rev`` (``acked``: a stamped state of that
    revision came back); otherwise it may be the empty canvas from before the
    first task was added, and applying it would delete that task.
    """
    if rev is None:
        return True
    stamped = revisions(raw)
    if stamped:
        return stamped == {rev}
    return acked == rev


# -- reading the browser's state back ------------------------------------------


@dataclass
class FlowUpdate:
    """What a returned graph state did to the document."""

    doc: dict[str, Any]
    changed: bool = False
    #: the task id or edge id the user selected; None when the state selects nothing
    selected: str | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_cycle_path(graph: nx.DiGraph, source: str, target: str) -> list[str] | None:
    """The cycle a new edge ``source -> target`` would close, as ``[source, target, ..., source]``."""
    if source == target:
        return [source, source]
    if source in graph and target in graph and nx.has_path(graph, target, source):
        return [source, *nx.shortest_path(graph, target, source)]
    return None


def _moved(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) > 0.5 or abs(a[1] - b[1]) > 0.5


def flow_to_doc(doc: Mapping[str, Any], raw: Mapping[str, Any]) -> FlowUpdate:
    """Apply a graph state from the browser (``{"nodes", "edges", "selectedId", "timestamp"}``) to ``doc``.

    * a task whose node is gone is deleted, with every edge left dangling;
    * a node drawn somewhere else than :func:`display_positions` says gets ``position``;
    * an edge of the document missing from the state is deleted;
    * a new edge becomes ``{"from", "to"}`` unless it repeats an existing one
      or closes a cycle: then it is refused with an error naming the cycle.

    Nodes the document does not know (not made by the designer) are ignored.
    """
    out = copy.deepcopy(dict(doc))
    update = FlowUpdate(out)
    raw_nodes = [n for n in raw.get("nodes") or [] if isinstance(n, dict)]
    raw_edges = [e for e in raw.get("edges") or [] if isinstance(e, dict)]
    tasks = out.get("tasks", [])
    ids = node_ids(out)
    drawn = display_positions(out)
    by_node = {n.get("id"): n for n in raw_nodes}

    # nodes: deletions and moves
    kept_tasks = []
    deleted: set[str] = set()
    for nid, task in zip(ids, tasks):
        node = by_node.get(nid)
        if node is None:
            deleted.add(nid)
            continue
        pos = node.get("position") or {}
        x, y = pos.get("x"), pos.get("y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and _moved((x, y), drawn[nid]):
            task["position"] = {"x": _rounded(x), "y": _rounded(y)}
            update.changed = True
        kept_tasks.append(task)
    if deleted:
        out["tasks"] = kept_tasks
        update.changed = True
        names = ", ".join(sorted(deleted))
        update.notes.append(f"deleted task{'s' if len(deleted) > 1 else ''} {names}")
    node_of_task = {}
    for nid, task in zip(ids, tasks):
        node_of_task.setdefault(task.get("id"), nid)
    task_of_node = {nid: task.get("id") for nid, task in zip(ids, tasks)}
    alive = {task.get("id") for task in out.get("tasks", [])}
    gone = {task_of_node[nid] for nid in deleted} - alive
    existing_ids = {t.get("id") for t in tasks}

    # edges: keep those still drawn, drop deleted and dangling ones
    raw_edge_ids = {e.get("id") for e in raw_edges}
    keys = edge_keys(out)
    kept_edges = []
    dangling = 0
    for key, edge in zip(keys, out.get("edges", [])):
        ends = (edge.get("from"), edge.get("to"))
        if any(end in gone for end in ends):
            dangling += 1
            continue
        drawn_before = all(end in existing_ids for end in ends)
        if drawn_before and key not in raw_edge_ids:
            update.notes.append(f"deleted edge {key}")
            continue  # the user deleted it
        kept_edges.append((key, edge))
    if dangling:
        update.notes.append(f"removed {dangling} edge{'s' if dangling > 1 else ''} left without a task")
    edges_changed = len(kept_edges) != len(out.get("edges", []))

    graph = nx.DiGraph()
    graph.add_nodes_from(t.get("id") for t in out.get("tasks", []))
    pairs = set()
    for _, edge in kept_edges:
        if edge.get("from") in graph and edge.get("to") in graph:
            graph.add_edge(edge["from"], edge["to"])
        pairs.add((edge.get("from"), edge.get("to")))
    known_keys = set(keys)
    new_edge_key: dict[str, str] = {}
    new_edges = []
    for raw_edge in raw_edges:
        if raw_edge.get("id") in known_keys:
            continue
        source = task_of_node.get(raw_edge.get("source"))
        target = task_of_node.get(raw_edge.get("target"))
        if source is None or target is None or source not in alive or target not in alive:
            continue
        if (source, target) in pairs:
            update.errors.append(f"edge {source} -> {target} already exists")
            continue
        cycle = find_cycle_path(graph, source, target)
        if cycle is not None:
            update.errors.append(
                f"refused edge {source} -> {target}: it would close the cycle {' -> '.join(cycle)}"
            )
            continue
        graph.add_edge(source, target)
        pairs.add((source, target))
        new_edges.append({"from": source, "to": target})
        new_edge_key[str(raw_edge.get("id"))] = f"{source}->{target}"
        update.notes.append(f"added edge {source} -> {target}")
    if edges_changed or new_edges:
        out["edges"] = [edge for _, edge in kept_edges] + new_edges
        update.changed = True

    # the first change of a document without saved positions fixes where its nodes are drawn, so that
    # nothing jumps (display_positions would otherwise lay the unsaved ones out again)
    if update.changed and any(_position(t) is None for t in out.get("tasks", [])):
        node_of = {id(task): nid for nid, task in zip(ids, tasks)}
        for task in out.get("tasks", []):
            if _position(task) is None:
                nid = node_of[id(task)]
                pos = (by_node.get(nid) or {}).get("position") or {}
                x, y = pos.get("x"), pos.get("y")
                if not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
                    x, y = drawn[nid]
                task["position"] = {"x": _rounded(x), "y": _rounded(y)}

    # selection
    selected = raw.get("selectedId")
    if isinstance(selected, str):
        if selected in task_of_node and task_of_node[selected] in alive:
            update.selected = task_of_node[selected]
        elif selected in new_edge_key:
            update.selected = new_edge_key[selected]
        elif selected in {k for k, _ in kept_edges}:
            update.selected = selected
    return update
