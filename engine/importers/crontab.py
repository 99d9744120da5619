"""Crontab lines to ``taskloom/v1`` documents: one workflow per job, with a cron trigger and a shell task.

=====================================  ==============================================================
crontab                                Taskloom
=====================================  ==============================================================
``m h dom mon dow command``            a ``cron`` trigger and a ``shell`` task running the command
``@daily`` ``@hourly`` ``@weekly``...  the five fields the macro stands for
``@reboot``                            no trigger (flagged): start it at boot with ``taskloom trigger``
``NAME=value``                         ``env`` of the shell tasks of the lines that follow
``CRON_TZ=zone``                       ``timezone`` of the triggers that follow
``SHELL=/bin/bash``                    the command runs through that shell (``bash -c '...'``)
``MAILTO=...``                         flagged: add a notify task on a ``failure`` edge if you want mail
``%`` in a command                     the text after it is the command's standard input
``# comment`` just above a job         the workflow's title
=====================================  ==============================================================

Workflow names are ``PREFIX-JOB`` (prefix ``cron`` unless given), JOB from
the program the command runs (``/opt/bin/backup.sh --full`` -> ``backup``),
made unique within the file. Cron never stops a job, so each task's
``timeout`` is a day (the run's own limit) instead of the default hour.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath
from typing import Any

from ..triggercheck import CRON_ALIASES, check_triggers
from .common import Ids, finish, literal, slug
from .report import ConversionError, Report, ReportItem
from .windows_tz import iana_zone

__all__ = ["convert_crontab", "looks_like_crontab"]

_ENV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_ENTRY = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S.*?)\s*$")
_MACRO = re.compile(r"^\s*(@[A-Za-z]+)\s+(\S.*?)\s*$")
_FIELD = re.compile(r"^[\w*,/\-#?]+$")
_WRAPPERS = {"sudo", "nice", "ionice", "nohup", "timeout", "flock", "env", "time", "exec", "chronic", "run-one",
             "setsid", "caffeinate"}
#: wrappers whose first plain argument is not the program: flock LOCKFILE cmd, timeout DURATION cmd
_WRAPPER_ARGUMENT = {"flock": 1, "timeout": 1}
_INTERPRETERS = {"python", "python3", "python2", "bash", "sh", "zsh", "node", "php", "perl", "ruby", "rscript",
                 "uv", "poetry", "pipenv", "npx", "npm"}
_SEPARATORS = re.compile(r"&&|\|\||;|\|")
_DAY = 86400
_HINT = ("write 'MIN HOUR DAY MONTH WEEKDAY command' (e.g. '30 6 * * * /opt/backup.sh'), '@daily command',"
         " 'NAME=value' or a '# comment'")


def _is_entry(line: str) -> bool:
    match = _ENTRY.match(line)
    return bool(match) and all(_FIELD.match(match[i]) for i in range(1, 6)) and bool(
        re.search(r"[\d*]", match[1]))


def looks_like_crontab(text: str, *, strict: bool = True) -> bool:
    """Whether ``text`` reads as a crontab: at least one job, and nothing but jobs, settings and comments.

    With ``strict=False`` one line that looks like a job (or a setting) is enough, so that a
    crontab with a mistake is still read as one and the mistake reported by its line.
    """
    jobs = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _MACRO.match(line) and line.split()[0].lower() in (*CRON_ALIASES, "@reboot"):
            jobs += 1
        elif _is_entry(line):
            jobs += 1
        elif not strict and (line.startswith("@") or _ENV.match(line) or _is_schedule(line)):
            jobs += 1
        elif not _ENV.match(line):
            if strict:
                return False
    return jobs > 0


def _is_schedule(line: str) -> bool:
    """Five time fields and nothing else: a job without its command."""
    fields = line.split()
    return len(fields) == 5 and all(_FIELD.match(f) for f in fields) and bool(re.search(r"[\d*]", fields[0]))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_percent(command: str) -> tuple[str, str | None]:
    """Cron's ``%``: the first unescaped one ends the command; the rest, with ``%`` as newlines, is its input."""
    parts, buf, i = [], "", 0
    while i < len(command):
        if command.startswith("\\%", i):
            buf += "%"
            i += 2
        elif command[i] == "%":
            parts.append(buf)
            buf = ""
            i += 1
        else:
            buf += command[i]
            i += 1
    parts.append(buf)
    return parts[0].rstrip(), ("\n".join(parts[1:]) if len(parts) > 1 else None)


def _job_name(command: str) -> str:
    """A short name for what a command runs: ``cd /srv && ./bin/backup.sh --full`` -> ``backup``."""
    for segment in _SEPARATORS.split(command):
        try:
            words = shlex.split(segment)
        except ValueError:
            words = segment.split()
        words = [w for w in words if not _ENV.match(w) or "/" in w.split("=")[0]]
        while words and (words[0] in _WRAPPERS or words[0].startswith("-") or words[0].isdigit()):
            takes = _WRAPPER_ARGUMENT.get(words[0], 0)
            words = words[1:]
            while takes and words:
                if not words[0].startswith("-"):
                    takes -= 1
                words = words[1:]
        if not words or words[0] in ("cd", "[", "test", "true", ":"):
            continue
        program = words[0]
        if PurePath(program).name.lower().rstrip("0123456789.") in _INTERPRETERS or PurePath(program).name.lower() \
                in _INTERPRETERS:
            rest = [w for w in words[1:] if not w.startswith("-")]
            if rest:
                program = rest[0]
        stem = PurePath(program).stem or PurePath(program).name
        name = slug(stem, "")
        if name:
            return name
    return "job"


def convert_crontab(text: str, *, filename: str = "", name: str | None = None, timezone: str | None = None
                    ) -> tuple[list[tuple[dict[str, Any], list[ReportItem]]], list[ReportItem]]:
    """One workflow per job line, and the report items about the whole file (SHELL, MAILTO, ...).

    Raises :class:`ConversionError` naming every line it cannot read.

    ``timezone`` is the zone the schedules are read in until a ``CRON_TZ=``
    line says otherwise (cron uses the local time of its machine); default UTC.
    """
    zone = "UTC"
    if timezone:
        zone = iana_zone(timezone) or ""
        if not zone:
            raise ConversionError.at("", f"unknown time zone {timezone!r}", "use an IANA name such as Europe/Berlin")
    prefix = slug(name, "cron") if name else "cron"
    env: dict[str, str] = {}
    shell = "/bin/sh"
    notes = Report()
    comment: str | None = None
    problems: list[Any] = []
    jobs: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"line {number}"
        if not line:
            comment = None
            continue
        if line.startswith("#"):
            words = line.lstrip("#").strip()
            comment = None if re.match(r"^m\s+h\s+dom\s+mon\s+dow", words) or not words else words
            continue
        macro = _MACRO.match(line)
        if macro and macro[1].lower() in (*CRON_ALIASES, "@reboot"):
            cron = CRON_ALIASES.get(macro[1].lower())
            jobs.append(dict(number=number, line=line, cron=cron, macro=macro[1].lower(), command=macro[2],
                             env=dict(env), shell=shell, zone=zone, comment=comment))
        elif _is_entry(line):
            entry = _ENTRY.match(line)
            assert entry is not None
            cron = " ".join(entry[i] for i in range(1, 6))
            issues = check_triggers([{"id": "t", "type": "cron", "cron": cron}])
            if issues:
                problems.append((where, f"{issues[0].message}", issues[0].hint))
            jobs.append(dict(number=number, line=line, cron=cron, macro=None, command=entry[6], env=dict(env),
                             shell=shell, zone=zone, comment=comment))
        elif _ENV.match(line):
            key, value = _ENV.match(line).groups()  # type: ignore[union-attr]
            value = _unquote(value)
            if key == "CRON_TZ":
                found = iana_zone(value)
                if found is None:
                    problems.append((where, f"unknown time zone {value!r} in CRON_TZ",
                                     "use an IANA name such as Europe/Berlin"))
                else:
                    zone = found
            elif key == "SHELL":
                shell = value or "/bin/sh"
                if shell not in ("/bin/sh", "sh"):
                    notes.mapped(where, f"SHELL={shell}: the commands of the lines that follow run through it"
                                 f" ({shell} -c '...')")
            elif key == "MAILTO":
                if value:
                    notes.flagged(where, f"MAILTO={value}: cron mailed the jobs' output; Taskloom keeps it in the"
                                  " run's log", "add a notify task (channel 'email') on a 'failure' edge to be"
                                  " mailed when a job fails")
            else:
                env[key] = value
        elif macro:
            problems.append((where, f"unknown macro {macro[1]!r}", "the macros are "
                             + ", ".join(sorted({*CRON_ALIASES, "@reboot"}))))
        elif _is_schedule(line) or (line.startswith("@") and len(line.split()) == 1):
            problems.append((where, f"{line!r} is a schedule without a command", "add the command after it"))
        else:
            problems.append((where, f"not a crontab line: {line[:60]!r}", _HINT))
        if not line.startswith("#"):
            comment = None
    if problems:
        from ..issues import Issue

        shown = [Issue(w, m, h) for w, m, h in problems[:20]]
        if len(problems) > 20:
            shown.append(Issue("", f"and {len(problems) - 20} more lines like these", "is this file a crontab?"))
        raise ConversionError(shown)
    if not jobs:
        raise ConversionError.at("", "no job in this crontab: only comments and settings", _HINT)
    taken: set[str] = set()
    out = []
    for job in jobs:
        base = f"{prefix}-{_job_name(_split_percent(job['command'])[0])}"[:64].rstrip("-_")
        doc_name, n = base, 2
        while doc_name in taken:
            doc_name, n = f"{base[:60]}-{n}", n + 1
        taken.add(doc_name)
        report = Report(doc_name)
        out.append((_workflow(job, doc_name, filename, report), report.items))
    notes.flagged("", "cron ran each command in its owner's home directory; these tasks run in the scheduler's"
                  " working directory", "set params.cwd (or cd in the command) where a command uses relative paths")
    return out, notes.items


def _workflow(job: dict[str, Any], doc_name: str, filename: str, report: Report) -> dict[str, Any]:
    where = f"line {job['number']}"
    command, stdin = _split_percent(job["command"])
    if stdin is not None:
        command = f"{command} <<'TASKLOOM_STDIN'\n{stdin}\nTASKLOOM_STDIN"
        report.mapped(where, "the text after '%' is the command's standard input (a here-document)")
    if job["shell"] not in ("/bin/sh", "sh"):
        command = f"{job['shell']} -c {shlex.quote(command)}"
    task_id = Ids().take(_job_name(_split_percent(job["command"])[0]).replace("-", "_"), "job")
    params: dict[str, Any] = {"command": literal(command)}
    if job["env"]:
        params["env"] = {k: literal(v) for k, v in job["env"].items()}
    task = {"id": task_id, "type": "shell", "title": job["comment"] or "", "params": params, "timeout": _DAY}
    if not task["title"]:
        del task["title"]
    triggers = []
    if job["cron"] is None:
        report.flagged(where, "@reboot has no Taskloom equivalent: the workflow has no trigger",
                       f"start it at boot from a system service with 'taskloom trigger {doc_name}'", task=task_id)
    else:
        trigger: dict[str, Any] = {"id": "cron", "type": "cron", "cron": job["cron"]}
        if job["zone"] != "UTC":
            trigger["timezone"] = job["zone"]
        triggers.append(trigger)
        shown = f"{job['macro']} = " if job["macro"] else ""
        report.mapped(where, f"{shown}cron '{job['cron']}' ({job['zone']}) -> workflow '{doc_name}', shell task"
                      f" '{task_id}'" + (f" with env {', '.join(job['env'])}" if job["env"] else ""), task=task_id)
    source = PurePath(filename).name if filename else "a crontab"
    description = f"Imported from line {job['number']} of {source}: {job['line']}"
    return finish(doc_name, description=description, triggers=triggers, tasks=[task])
