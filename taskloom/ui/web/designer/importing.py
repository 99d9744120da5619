"""The designer's import dialog: a file in any supported format, converted, and its import report.

:func:`load_upload` turns an uploaded file into what the page opens: a
``taskloom/v1`` document as it is, or the documents a conversion gives
(Logic Apps, n8n, crontab) with the import report, or the problems that
stopped it. :func:`report_markdown` shows the report, placeholders first.
Only :func:`render_report` touches Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from taskloom.core.importers import FORMAT_TITLES, FORMATS, ConversionError, convert, sniff
from taskloom.core.validation import Issue, parse_document

from taskloom.ui.web.designer.docops import editable_problems
from taskloom.ui.web.designer.flowstate import md_escape

__all__ = ["FORMAT_LABELS", "Loaded", "load_upload", "report_summary", "report_markdown", "render_report"]

FORMAT_LABELS = {"auto": "Recognise it (auto)", **FORMAT_TITLES}
_ORDER = {"placeholder": 0, "flagged": 1, "mapped": 2}
_MARK = {"placeholder": "✗ replace", "flagged": "⚠ check", "mapped": "✓"}


@dataclass
class Loaded:
    """An uploaded file, read: documents to open, the import report, or the problems that stopped it."""

    file: str
    format: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Issue] = field(default_factory=list)


def load_upload(raw: bytes, filename: str, source: str = "auto", *, timezone: str | None = None) -> Loaded:
    """Read an uploaded file as ``source`` (one of :data:`taskloom.core.importers.FORMATS`)."""
    assert source in FORMATS
    kind = source if source != "auto" else (sniff(raw, filename) or "taskloom")
    if kind == "taskloom":
        doc, problems = parse_document(raw)
        if not problems:
            problems = editable_problems(doc)
        return Loaded(filename, kind, [] if problems else [doc], [], problems)
    try:
        conversion = convert(raw, kind, filename=filename, timezone=timezone)
    except ConversionError as exc:
        return Loaded(filename, kind, problems=exc.issues)
    return Loaded(filename, kind, conversion.documents, [i.to_dict() for i in conversion.report])


def report_summary(loaded: Loaded) -> str:
    """One line: the file, the format, how many workflows, placeholders, items to check and mapped."""
    counts = {k: sum(1 for i in loaded.report if i["kind"] == k) for k in _ORDER}
    n = len(loaded.documents)
    return (f"{loaded.file} converted from {FORMAT_TITLES[loaded.format]}: {n} workflow{'s' if n != 1 else ''},"
            f" {counts['placeholder']} placeholder{'s' if counts['placeholder'] != 1 else ''} to replace,"
            f" {counts['flagged']} to check, {counts['mapped']} mapped")


def report_markdown(report: list[dict[str, Any]], workflow: str | None = None) -> str:
    """The report as a Markdown list, placeholders first, then what to check, then what mapped."""
    items = [i for i in report if workflow is None or i.get("workflow") in (None, workflow)]
    lines = []
    for item in sorted(items, key=lambda i: _ORDER.get(i["kind"], 3)):
        hint = f" — _{md_escape(item['hint'])}_" if item.get("hint") else ""
        path = (item.get("path") or "(file)").replace("`", "'")
        lines.append(f"- {_MARK.get(item['kind'], '?')} `{path}` {md_escape(item['message'])}{hint}")
    return "\n".join(lines)


def render_report(loaded: Loaded, current: str | None, on_open: Callable[[int], None], on_dismiss: Callable[[], None],
                  key: str) -> None:
    """The report of the last conversion, and a picker when it gave several workflows."""
    import streamlit as st

    st.markdown(f"**Import report** · {md_escape(report_summary(loaded))}")
    names = [str(d.get("name")) for d in loaded.documents]
    if len(names) > 1:
        pick = st.columns([3, 1], vertical_alignment="bottom")
        pick[0].selectbox("Converted workflows (one is open at a time)", range(len(names)), key=f"{key}:pick",
                          format_func=lambda i: names[i], index=names.index(current) if current in names else 0)
        pick[1].button("Open", key=f"{key}:open", on_click=lambda: on_open(int(st.session_state[f"{key}:pick"])))
    st.markdown(report_markdown(loaded.report, current if len(names) > 1 else None) or "_nothing to report_")
    st.button("Dismiss the report", key=f"{key}:dismiss", on_click=on_dismiss)
