"""Checks of a workflow's graph: edges, cycles, and which task is upstream of which.

:func:`check_edges` reports edges that name missing tasks, self-loops,
duplicates and ``true``/``false`` edges that do not leave a condition, and
builds a :class:`Graph` from the edges that make sense. :func:`check_cycles`
sorts the graph topologically (Kahn's algorithm on plain dicts, which is much
cheaper than building a networkx graph) and only when that fails hands the
graph to networkx to report every cycle, one per strongly connected
component. :class:`Graph` answers "is X upstream of T?" for template checks:
direct predecessors are a set lookup; anything else uses ancestor bitsets,
computed once, in topological order, only when first needed, so a 10,000-task
workflow stays fast.
"""

from __future__ import annotations

from typing import Any, Mapping

import networkx as nx

from taskloom.core.issues import Issue, did_you_mean, pointer

__all__ = ["Graph", "check_edges", "check_cycles", "TASK_SUGGESTION_BUDGET"]

#: How many missing task names get a difflib suggestion; each one scans every task id.
TASK_SUGGESTION_BUDGET = 50


class Graph:
    """The tasks and the valid edges between them."""

    def __init__(self, task_ids: list[str]) -> None:
        self.task_ids = task_ids
        self.order = {tid: i for i, tid in enumerate(task_ids)}
        #: task id -> ids of its direct predecessors
        self.preds: dict[str, set[str]] = {tid: set() for tid in task_ids}
        #: task id -> ids of its direct successors
        self.succs: dict[str, list[str]] = {tid: [] for tid in task_ids}
        #: (from, to) -> index of the edge in the document
        self.edge_index: dict[tuple[str, str], int] = {}
        #: False when some edge was left out (it named a missing task, ...)
        self.complete = True
        self._topological: list[str] | None = None
        self._cyclic = False
        self._digraph: nx.DiGraph | None = None
        self._ancestors: dict[Any, int] | None = None
        self._key: Mapping[str, Any] = {}
        self._position: dict[Any, int] = {}

    def add_edge(self, source: str, target: str, index: int) -> None:
        self.edge_index[(source, target)] = index
        self.preds[target].add(source)
        self.succs[source].append(target)

    def topological_order(self) -> list[str] | None:
        """The tasks in an order where every edge points forward; None when there is a cycle."""
        if self._topological is None and not self._cyclic:
            waiting = {tid: len(p) for tid, p in self.preds.items()}
            order = [tid for tid, n in waiting.items() if n == 0]
            for tid in order:  # grows while iterating
                for nxt in self.succs[tid]:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        order.append(nxt)
            if len(order) == len(waiting):
                self._topological = order
            else:
                self._cyclic = True
        return self._topological

    def digraph(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (built on first use)."""
        if self._digraph is None:
            self._digraph = nx.DiGraph()
            self._digraph.add_nodes_from(self.task_ids)
            self._digraph.add_edges_from(self.edge_index)
        return self._digraph

    def is_upstream(self, source: str, target: str) -> bool:
        """True when a path of edges leads from ``source`` to ``target``."""
        if source == target:
            return False
        if source in self.preds[target]:
            return True
        if self._ancestors is None:
            self._compute_ancestors()
        assert self._ancestors is not None
        bit = self._position[self._key[source]]
        return bool(self._ancestors[self._key[target]] >> bit & 1)

    def _compute_ancestors(self) -> None:
        """Per node (or, with cycles, per strongly connected component): itself and its ancestors as a bitset."""
        topological = self.topological_order()
        if topological is not None:
            order: list[Any] = topological
            self._key = {n: n for n in order}
            preds: Mapping[Any, Any] = self.preds
        else:
            condensed = nx.condensation(self.digraph())
            order = list(nx.topological_sort(condensed))
            self._key = condensed.graph["mapping"]
            preds = condensed.pred
        self._position = {node: i for i, node in enumerate(order)}
        ancestors: dict[Any, int] = {}
        for node in order:
            mask = 1 << self._position[node]
            for p in preds[node]:
                mask |= ancestors[p]
            ancestors[node] = mask
        self._ancestors = ancestors


def check_edges(
    edges: list[Any],
    task_ids: list[str],
    task_types: Mapping[str, Any],
    known_types: Any,
) -> tuple[list[Issue], Graph]:
    """Issues of ``edges`` and the graph of the valid ones.

    ``task_ids`` are the tasks in document order (first occurrence of each id);
    ``task_types`` maps an id to its ``type``; ``known_types`` supports ``in``.
    """
    graph = Graph(task_ids)
    issues: list[Issue] = []
    budget = [TASK_SUGGESTION_BUDGET]
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict):
            graph.complete = False
            continue
        source, target = edge.get("from"), edge.get("to")
        ends_ok = True
        for key, end in (("from", source), ("to", target)):
            if not isinstance(end, str):
                ends_ok = False  # the schema check reported it
            elif end not in graph.preds:
                ends_ok = False
                issues.append(_missing_task(i, key, end, graph, budget))
        if not ends_ok:
            graph.complete = False
            continue
        issue = _edge_issue(i, edge, source, target, graph, task_types, known_types)
        if issue is not None:
            issues.append(issue)
        if (source, target) not in graph.edge_index and source != target:
            graph.add_edge(source, target, i)
    return issues, graph


def _missing_task(i: int, key: str, name: str, graph: Graph, budget: list[int]) -> Issue:
    if budget[0] > 0:
        budget[0] -= 1
        hint = did_you_mean(name, graph.preds, listing="known tasks:")
    else:
        hint = "use the id of a task listed under \"tasks\""
    return Issue(pointer("edges", i, key), f"edge {key} '{name}': there is no task '{name}'", hint)


def _edge_issue(
    i: int,
    edge: Mapping[str, Any],
    source: str,
    target: str,
    graph: Graph,
    task_types: Mapping[str, Any],
    known_types: Any,
) -> Issue | None:
    """A self-loop, a duplicate, or a true/false edge that does not leave a condition."""
    if source == target:
        return Issue(
            pointer("edges", i),
            f"edge from '{source}' to itself",
            "a task cannot depend on itself; remove this edge",
        )
    first = graph.edge_index.get((source, target))
    if first is not None:
        return Issue(
            pointer("edges", i),
            f"duplicate edge '{source}' -> '{target}' (the first is {pointer('edges', first)})",
            "keep one edge per pair of tasks; \"on\": \"always\" runs the target after any outcome",
        )
    on = edge.get("on", "success")
    source_type = task_types.get(source)
    # A type that is not a string (the schema reported it) cannot be looked up: a list is unhashable.
    known = isinstance(source_type, str) and source_type in known_types
    if on in ("true", "false") and source_type != "condition" and known:
        return Issue(
            pointer("edges", i, "on"),
            f"edge '{source}' -> '{target}' is on '{on}', but '{source}' is a "
            f"'{source_type}' task, not a condition",
            f"use \"on\": \"success\" or \"failure\", or make '{source}' a condition task",
        )
    return None


def check_cycles(graph: Graph) -> list[Issue]:
    """One issue per cycle (per strongly connected component), at the edge that closes it."""
    if graph.topological_order() is not None:
        return []
    digraph = graph.digraph()
    issues: list[Issue] = []
    for component in nx.strongly_connected_components(digraph):
        if len(component) < 2:
            continue
        cycle = nx.find_cycle(digraph.subgraph(component))
        nodes = _rotate([u for u, _ in cycle], graph.order)
        indexes = [graph.edge_index[(u, v)] for u, v in cycle]
        closing = max(indexes)
        issues.append(
            Issue(
                pointer("edges", closing),
                "cycle: " + " -> ".join(nodes + [nodes[0]]),
                "a workflow must be acyclic; remove or reverse one of these edges "
                f"(this one closes the cycle, the others are "
                + ", ".join(pointer("edges", j) for j in sorted(indexes) if j != closing)
                + ")",
            )
        )
    return issues


def _rotate(nodes: list[str], order: Mapping[str, int]) -> list[str]:
    """The cycle starting at its earliest task in document order."""
    start = min(range(len(nodes)), key=lambda k: order[nodes[k]])
    return nodes[start:] + nodes[:start]
