"""The palette: the registry's task types grouped by category, each with an icon and a one-line description."""

from __future__ import annotations

from typing import Callable

from taskloom.core.registry import Registry, TaskType

__all__ = ["ICONS", "CATEGORY_ORDER", "icon_for", "one_line", "palette_groups", "render_palette", "palette_key"]

#: registry icon names (Feather-style) -> emoji shown in the palette and on nodes
ICONS = {
    "terminal": "💻",
    "python": "🐍",
    "git-branch": "🔀",
    "circle": "⚪",
    "globe": "🌐",
    "database": "🗄️",
    "copy": "📋",
    "folder": "📁",
    "bell": "🔔",
    "shuffle": "🧮",
    "clock": "⏱️",
    "layers": "📚",
    "repeat": "🔁",
    "git-commit": "🔖",
    "alert-triangle": "🚧",
}

CATEGORY_ORDER = ("Run code", "Control flow", "Connect", "Data", "Files", "Code", "Notify")


def icon_for(icon: str, type_name: str = "") -> str:
    """The emoji for a registry icon name; a puzzle piece for unknown ones (plugins)."""
    return ICONS.get(icon, "🧩")


def one_line(text: str, limit: int = 90) -> str:
    """The first sentence of ``text``, at most ``limit`` characters."""
    flat = " ".join(text.split())
    first = flat.split(". ")[0].rstrip(".")
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    return first


def palette_groups(registry: Registry) -> list[tuple[str, list[TaskType]]]:
    """``[(category, [types sorted by title])]``, known categories first, others alphabetically.

    Placeholder types are left out: only an import makes them, and they never validate.
    """
    groups: dict[str, list[TaskType]] = {}
    for task_type in registry:
        if task_type.placeholder:
            continue
        groups.setdefault(task_type.category or "Other", []).append(task_type)
    rank = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    ordered = sorted(groups, key=lambda c: (rank.get(c, len(rank)), c))
    return [(c, sorted(groups[c], key=lambda t: t.title.lower())) for c in ordered]


def palette_key(type_name: str) -> str:
    return f"designer_add_{type_name}"


def render_palette(registry: Registry, on_add: Callable[[str], None]) -> None:
    """One expander per category, a button per type; clicking calls ``on_add(type_name)``."""
    import streamlit as st

    st.markdown("**Add a task**")
    for category, types in palette_groups(registry):
        with st.expander(category, expanded=True):
            for task_type in types:
                st.button(
                    f"{icon_for(task_type.icon, task_type.name)} {task_type.title}",
                    key=palette_key(task_type.name),
                    help=task_type.description,
                    on_click=on_add,
                    args=(task_type.name,),
                    width="stretch",
                )
                st.caption(one_line(task_type.description))
