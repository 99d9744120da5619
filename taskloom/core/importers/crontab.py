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
``m h dom mon dow user command``       a system crontab: the user is noted (description, report), not run
``s m h dom mon dow command``          refused: a seconds field (other cron dialects) has no equivalent
=====================================  ==============================================================

Workflow names are ``cron-FILE-JOB``: FILE the file's stem (``my.crontab``
-> ``my``), so that two files' jobs never share a name, and JOB the program
the command runs (``/opt/bin/backup.sh --full`` -> ``backup``), made unique
within the file. A name given replaces ``cron-FILE``. JOB rather than the
line number, so that adding a line above a job does not rename it. Cron never
stops a job, so each task's ``timeout`` is a day (the run's own limit)
instead of the default hour.

A system crontab (``/etc/crontab``, ``/etc/cron.d/*``) has a user column
between the time fields and the command. It is read that way when
``user_column`` says so, or (``None``) when the file is ``/etc/crontab`` or
in a ``cron.d`` folder, or when a job's sixth word is an account no program
is named after (``root``, ``nobody``, ``daemon``, ``www-data``); a user's
crontab never starts a command with those. Anything else, such as
``backup``, is a program, as a user's crontab reads it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath
from typing import Any

from taskloom.core.errors import UserMistake
from taskloom.core.triggercheck import CRON_ALIASES, check_triggers
from taskloom.core.importers.common import Ids, finish, literal, slug
from taskloom.core.importers.report import ConversionError, Report, ReportItem
from taskloom.core.importers.windows_tz import iana_zone

__all__ = ["convert_crontab", "looks_like_crontab", "has_user_column"]

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
#: a user name as cron accepts one in a system crontab's user column
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
#: accounts that no program is named after: one after the time fields marks a system crontab
_ACCOUNTS = frozenset({"root", "nobody", "daemon", "www-data", "_www"})
#: what only a cron field looks like (digits, ``*``, ``?``, steps, ranges, lists, ``L``/``W``/``#``, day
#: names): after the five fields it is a sixth one (seconds, in other dialects), never a program or a user
_DAY_NAME = r"(?:sun|mon|tue|wed|thu|fri|sat)"
_TIME_FIELD = re.compile(rf"^(?:[\d*?][\d*?,/LW#-]*|{_DAY_NAME}(?:[-,]{_DAY_NAME}|#\d|/\d+|L)*)$", re.IGNORECASE)
#: a comment that draws the format (``# .---- minute``, ``# |  |``, ``# *  *  * user-name command``)
_DRAWING = re.compile(r"^(?:[*|.+=_~-]|m\s+h\s+dom\s+mon\s+dow)")
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
        folders = [w for w in words[1:] if not w.startswith("-") and slug(w, "")]
        if PurePath(program).name == "run-parts" and folders:  # run-parts /etc/cron.daily -> cron-daily
            return slug(PurePath(folders[-1]).name, "job")
        stem = PurePath(program).stem or PurePath(program).name
        name = slug(stem, "")
        if name:
            return name
    return "job"


def _prefix(filename: str) -> str:
    """``cron-STEM``: the file's jobs are named apart from another file's (``my.crontab`` -> ``cron-my``)."""
    stem = slug(PurePath(filename).stem, "")[:24].rstrip("-_") if filename else ""
    return f"cron-{stem}" if stem else "cron"


def _after_schedule(line: str) -> str | None:
    """What follows a job's schedule (five fields or a macro), or None when the line is not a job."""
    macro = _MACRO.match(line)
    if macro and macro[1].lower() in (*CRON_ALIASES, "@reboot"):
        return macro[2]
    entry = _ENTRY.match(line)
    return entry[6] if entry and _is_entry(line) else None


def has_user_column(text: str, filename: str = "") -> str | None:
    """Why ``text`` is a system crontab, whose jobs name a user before the command; None when it is not one.

    >>> has_user_column("17 * * * * root cd / && run-parts --report /etc/cron.hourly\\n")
    'line 1 runs as root'
    >>> has_user_column("0 5 * * * backup --full\\n") is None  # 'backup' is read as the program
    True
    >>> has_user_column("0 5 * * * backup --full\\n", "/etc/cron.d/backup")
    'it is in a cron.d folder'
    """
    path = PurePath(filename)
    if path.parts[-2:] == ("etc", "crontab"):
        return "it is /etc/crontab"
    if filename and path.parent.name == "cron.d":
        return "it is in a cron.d folder"
    for number, raw in enumerate(text.splitlines(), start=1):
        words = (_after_schedule(raw.strip()) or "").split(None, 1)
        if len(words) == 2 and words[0] in _ACCOUNTS:
            return f"line {number} runs as {words[0]}"
    return None


class _LineError(UserMistake, ValueError):
    """A job line cron would read differently from what it seems to say: (message, hint)."""


def _split_job(rest: str, fields: list[str], users: bool) -> tuple[str, str | None]:
    """The command after a job's schedule, and its user when the crontab has a user column.

    ``fields`` are the five time fields ([] for a macro). A sixth field (a seconds
    field, in other cron dialects) raises :class:`_LineError`: read as five,
    the line would run its last field as the command.
    """
    words = rest.split()
    extra = 0
    while fields and extra < len(words) and _TIME_FIELD.match(words[extra]):
        extra += 1
    if extra:
        every = [*fields, *words[:extra]]
        command = rest.split(None, extra)[extra] if len(words) > extra else "COMMAND"
        five = " ".join(every[1:6])
        if extra == 1 and every[0].isdigit():
            hint = f"drop the seconds field: '{five} {command}' runs at second 0 of the same minutes"
        elif extra == 1:
            hint = (f"Taskloom's cron triggers fire at most once a minute: drop the seconds field ('{five}"
                    f" {command}'), or give this job an interval trigger (unit 'seconds') instead")
        else:
            hint = (f"keep the five fields minute hour day-of-month month day-of-week (no seconds or year field),"
                    f" e.g. '{five} {command}'")
        raise _LineError(f"{len(every)} time fields ('{' '.join(every)}'): cron has 5 (minute hour day-of-month"
                         " month day-of-week); other cron dialects add a seconds (or year) field, which Taskloom's"
                         " cron triggers do not have", hint)
    if not users:
        return rest, None
    user, command = (rest.split(None, 1) + [""])[:2]
    why = "in a system crontab a job is 'MIN HOUR DAY MONTH WEEKDAY USER command'"
    if not _USER.match(user):
        raise _LineError(f"{user!r} is not a user name: {why}", "add the user before the command, or import with"
                         " --no-user-column if this is a user's crontab")
    if not command.strip():
        raise _LineError(f"a job for user {user!r} without a command: {why}", "add the command after the user")
    return command.strip(), user


def convert_crontab(text: str, *, filename: str = "", name: str | None = None, timezone: str | None = None,
                    user_column: bool | None = None,
                    ) -> tuple[list[tuple[dict[str, Any], list[ReportItem]]], list[ReportItem]]:
    """One workflow per job line, and the report items about the whole file (SHELL, MAILTO, ...).

    Raises :class:`ConversionError` naming every line it cannot read.

    ``timezone`` is the zone the schedules are read in until a ``CRON_TZ=``
    line says otherwise (cron uses the local time of its machine); default UTC.
    ``user_column`` says whether each job names a user before its command
    (a system crontab); None recognises it (:func:`has_user_column`).
    """
    zone = "UTC"
    if timezone:
        zone = iana_zone(timezone) or ""
        if not zone:
            raise ConversionError.at("", f"unknown time zone {timezone!r}", "use an IANA name such as Europe/Berlin")
    prefix = slug(name, "cron") if name else _prefix(filename)
    env: dict[str, str] = {}
    shell = "/bin/sh"
    notes = Report()
    detected = has_user_column(text, filename) if user_column is None else None
    users = bool(detected) if user_column is None else user_column
    if user_column:
        notes.mapped("", "system crontab (as asked): the word after each job's schedule is its user")
    elif detected:
        notes.flagged("", f"system crontab ({detected}): the word after each job's schedule is its user, not its"
                      " command", "import with --no-user-column if this is a user's crontab")
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
            comment = None if _DRAWING.match(words) or not words else words
            continue
        macro = _MACRO.match(line)
        rest = _after_schedule(line)
        if rest is not None:
            fields = [] if macro else line.split()[:5]
            cron = CRON_ALIASES.get(macro[1].lower()) if macro else " ".join(fields)
            issues = check_triggers([{"id": "t", "type": "cron", "cron": cron}]) if fields else []
            try:
                command, user = _split_job(rest, fields, users)
            except _LineError as exc:
                problems.append((where, *exc.args))
            else:
                if issues:
                    problems.append((where, f"{issues[0].message}", issues[0].hint))
                jobs.append(dict(number=number, line=line, cron=cron, macro=macro[1].lower() if macro else None,
                                 command=command, user=user, env=dict(env), shell=shell, zone=zone,
                                 comment=comment))
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
        from taskloom.core.issues import Issue

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
    if job["user"]:
        description += (f"\nCron ran it as user {job['user']} (the system crontab's user column); Taskloom runs it"
                        " as the user the scheduler runs as.")
        report.flagged(where, f"cron ran it as user '{job['user']}' (the user column); the task runs as the user"
                       " the scheduler runs as", f"where it needs {job['user']}'s rights, run the scheduler as"
                       f" {job['user']} or start the command with 'sudo -u {job['user']}'", task=task_id)
    return finish(doc_name, description=description, triggers=triggers, tasks=[task])
