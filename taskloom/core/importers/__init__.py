"""Bring your workflows: Azure Logic Apps definitions, n8n exports and crontabs as ``taskloom/v1``.

:func:`convert` takes a file's content (and its name, a hint) and returns a
:class:`Conversion`: the workflow documents and the import report (what
each step became, what to check, what to replace). It never stores
anything and does no I/O; the CLI (``taskloom import --from``) and the
designer's import dialog call it and decide what to do with the result.

A file's content is read and parsed once: :class:`Content` holds it with
what it parsed to, and :func:`sniff`, :func:`detect_format` and :func:`convert`
take one in place of the raw content, so that recognising a file, converting
it and storing it never parse it again.

``source="auto"`` recognises the format (:func:`sniff`): a JSON object with
``format: taskloom/v1``, an n8n export (``nodes`` and ``connections``), a
Logic Apps definition (``triggers``/``actions``, a ``definition`` wrapper or
an ARM template), or crontab lines. What cannot be converted becomes a
``placeholder`` task (see :mod:`taskloom.core.specs.placeholder`), so a converted
document validates unless it holds placeholders or a condition kept
verbatim. Input that cannot be read at all raises :class:`ConversionError`
whose issues say where (a JSON pointer or a line) and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from taskloom.core.model import FORMAT
from taskloom.core.validation import Issue, parse_document
from taskloom.core.importers.crontab import convert_crontab, looks_like_crontab
from taskloom.core.importers.logicapps import convert_logicapps, looks_like_logicapps
from taskloom.core.importers.n8n import convert_n8n, looks_like_n8n
from taskloom.core.importers.report import KINDS, ConversionError, ReportItem

__all__ = [
    "FORMATS",
    "SOURCES",
    "FORMAT_TITLES",
    "Content",
    "Conversion",
    "ConversionError",
    "ReportItem",
    "KINDS",
    "sniff",
    "detect_format",
    "convert",
]

#: the formats a file can be converted from
SOURCES = ("logicapps", "n8n", "crontab")
#: what ``--from`` accepts
FORMATS = ("auto", "taskloom", *SOURCES)
FORMAT_TITLES = {"taskloom": "Taskloom (taskloom/v1)", "logicapps": "Azure Logic Apps", "n8n": "n8n",
                 "crontab": "crontab"}
_WHAT = "a taskloom/v1 workflow, an n8n export, a Logic Apps definition (or ARM template) or a crontab"


@dataclass
class Conversion:
    """The result of converting one file."""

    #: the format it was read as
    format: str
    #: the taskloom/v1 documents (one per workflow in the file), not yet validated
    documents: list[dict[str, Any]]
    #: what each part of the file became, in the order of the file
    report: list[ReportItem] = field(default_factory=list)

    @property
    def placeholders(self) -> list[ReportItem]:
        """The report items that left a placeholder to replace."""
        return [item for item in self.report if item.kind == "placeholder"]


def _text(raw: str | bytes) -> str:
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConversionError.at(f"line {line}", f"invalid UTF-8 at byte {exc.start}", "save the file as UTF-8") \
            from None


def _json_like(text: str, filename: str) -> bool:
    return text.lstrip()[:1] in ("{", "[") or filename.lower().endswith(".json")


@dataclass(frozen=True)
class Content:
    """A file's content, decoded and (when it looks like JSON) parsed at most once, when first asked.

    What recognising a file, converting it and storing it share instead of its
    text: ``Content(raw, filename)``, then :func:`sniff`, :func:`convert` or
    the store's import take it, and none of them parses it again.
    """

    #: the file's content, as read (bytes) or given (text)
    raw: str | bytes
    #: its name, a hint: a ``.json`` name is read as JSON
    filename: str = ""

    @cached_property
    def text(self) -> str | None:
        """The content as text (a UTF-8 byte order mark dropped), or None when it is not UTF-8."""
        try:
            return _text(self.raw)
        except ConversionError:
            return None

    @cached_property
    def parsed(self) -> tuple[Any, list[Issue]] | None:
        """What :func:`parse_document` made of the content (document, issues), or None when it does not look
        like JSON. The content as read is parsed, so its size is the file's, byte order mark included."""
        text = self.text
        if text is None or not _json_like(text, self.filename):
            return None
        return parse_document(self.raw)

    @cached_property
    def format(self) -> str | None:
        """The format it is in, or None when it is none of them (or unreadable JSON): what :func:`sniff` says."""
        text = self.text
        if text is None:
            return None
        if self.parsed is None:
            return "crontab" if looks_like_crontab(text, strict=False) else None
        data, issues = self.parsed
        if issues:
            return None
        if isinstance(data, dict) and (data.get("format") == FORMAT or ("format" in data and "tasks" in data)):
            return "taskloom"
        if looks_like_n8n(data):
            return "n8n"
        if looks_like_logicapps(data):
            return "logicapps"
        return None


def _content(raw: str | bytes | Content, filename: str) -> Content:
    return raw if isinstance(raw, Content) else Content(raw, filename)


def sniff(raw: str | bytes | Content, filename: str = "") -> str | None:
    """The format of a file's content, or None when it is none of them (or unreadable JSON)."""
    return _content(raw, filename).format


def detect_format(raw: str | bytes | Content, filename: str = "") -> str:
    """Like :func:`sniff`, but raises :class:`ConversionError` saying what the content is not."""
    content = _content(raw, filename)
    if content.format is not None:
        return content.format
    if content.text is None:
        _text(content.raw)  # raises, naming the line of the bad byte
    if content.parsed is not None:
        _, issues = content.parsed
        if issues:
            raise ConversionError(issues)
        raise ConversionError.at("", f"this JSON is not {_WHAT}",
                                 "name the format with --from (logicapps, n8n, taskloom), or check the file")
    raise ConversionError.at("", f"this file is not JSON and not a crontab: it is not {_WHAT}",
                             "name the format with --from, or check the file")


def _line_order(item: ReportItem) -> int:
    """Report items of a crontab by line; items about the whole file last."""
    return int(item.path.split()[1]) if item.path.startswith("line ") else 1 << 30


def _json(text: str, content: Content | None) -> Any:
    """The JSON of the content: parsed already when ``content`` looks like JSON, else parsed now."""
    data, issues = content.parsed if content is not None and content.parsed is not None else parse_document(text)
    if issues:
        raise ConversionError(issues)
    return data


def convert(
    raw: str | bytes | Content,
    source: str = "auto",
    *,
    filename: str = "",
    name: str | None = None,
    timezone: str | None = None,
    user_column: bool | None = None,
) -> Conversion:
    """Convert a file's content from ``source`` (one of :data:`FORMATS`) to ``taskloom/v1`` documents.

    ``name`` sets the workflow name (a crontab's name prefix); ``timezone``
    is the zone a crontab's schedules are read in (cron uses its machine's
    local time); ``user_column`` whether a crontab's jobs name a user before
    the command, as in ``/etc/crontab`` (None: recognised from the file).
    Raises :class:`ConversionError` for input that cannot be read.
    ``raw`` may be a :class:`Content` whose format was recognised already:
    it is not parsed again.
    """
    if source not in FORMATS:
        raise ConversionError.at("", f"unknown format {source!r}", f"use one of {', '.join(FORMATS)}")
    content = raw if isinstance(raw, Content) else None
    if content is None:
        text = _text(raw)
    else:
        text = content.text if content.text is not None else _text(content.raw)  # raises: not UTF-8
    if not text.strip():
        raise ConversionError.at("", "the file is empty", f"give {_WHAT}")
    if source == "auto":
        content = _content(raw, filename)  # recognising JSON parses it: converting it uses that
        source = detect_format(content)
    if source == "taskloom":
        doc = _json(text, content)
        if isinstance(doc, dict) and name:
            doc = {**doc, "name": name}
        return Conversion("taskloom", [doc])
    if source == "crontab":
        if _json_like(text, filename) and text.lstrip()[:1] in ("{", "["):
            raise ConversionError.at("line 1", "this is JSON, not a crontab", "use --from auto, logicapps or n8n")
        pairs, notes = convert_crontab(text, filename=filename, name=name, timezone=timezone,
                                       user_column=user_column)
        report = sorted([*notes, *(item for _, items in pairs for item in items)], key=_line_order)
        return Conversion("crontab", [d for d, _ in pairs], report)
    data = _json(text, content)
    convert_json = convert_logicapps if source == "logicapps" else convert_n8n
    if source == "n8n" and isinstance(data, dict) and "format" in data and "nodes" not in data:
        raise ConversionError.at("", "this is not an n8n export: it has no 'nodes' list and 'connections' object",
                                 "export the workflow from n8n (Download), or use --from auto")
    pairs = convert_json(data, filename=filename, name=name)
    return Conversion(source, [d for d, _ in pairs], [item for _, items in pairs for item in items])
