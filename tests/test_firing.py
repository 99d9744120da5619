"""When time triggers fire (taskloom.core.firing) and ``taskloom next``: DST, anchors, bounds, host time zones."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from croniter import croniter

from taskloom.core import firing as firing_module
from taskloom.core.firing import Firing, FiringError, firings_between, next_firings, parse_instant
from taskloom.core.model import Trigger
from taskloom.ui.cli.main import cli
from taskloom.ui.cli.firings import next_

from conftest import make_doc

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def at(text: str) -> float:
    """An ISO 8601 date-time with offset as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def cron(expression: str, zone: str = "UTC", **config) -> Trigger:
    return Trigger("t", "cron", {"cron": expression, "timezone": zone, **config})


def interval(every: int, unit: str, **config) -> Trigger:
    return Trigger("t", "interval", {"every": every, "unit": unit, **config})


def set_host_tz(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


@pytest.fixture(params=["Pacific/Chatham", "UTC"])
def host_tz(request, monkeypatch):
    """Run under an exotic host time zone (and UTC); plans are rebuilt from scratch."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    firing_module._cached_plan.cache_clear()
    yield request.param
    monkeypatch.undo()
    time.tzset()
    firing_module._cached_plan.cache_clear()


DAILY_0230 = {
    "cron": cron("30 2 * * *", "Europe/Berlin"),
    "interval": interval(1, "days", at="02:30", timezone="Europe/Berlin"),
}
YEAR_2026 = (at("2026-01-01T00:00:00+01:00"), at("2027-01-01T00:00:00+01:00"))


# -- DST: a year of a daily 02:30 trigger in Berlin ---------------------------------


@pytest.mark.parametrize("kind", DAILY_0230)
def test_a_year_of_daily_0230_in_berlin(kind, host_tz):
    firings = firings_between(DAILY_0230[kind], *YEAR_2026)
    assert len(firings) == 365
    by_day = {f.wall[:10]: f for f in firings}
    assert len(by_day) == 365  # one per local day

    spring = by_day["2026-03-29"]  # 02:30 does not exist: once, at 03:30 CEST
    assert spring.instant == at("2026-03-29T01:30:00+00:00")
    assert spring.wall == "2026-03-29T03:30:00+02:00"
    assert spring.moved == "02:30 does not exist on 2026-03-29 (clocks jump forward); fired at 03:30"

    autumn = by_day["2026-10-25"]  # 02:30 happens twice: once, at the first
    assert autumn.instant == at("2026-10-25T00:30:00+00:00")
    assert autumn.wall == "2026-10-25T02:30:00+02:00"
    assert autumn.moved == "02:30 happens twice on 2026-10-25 (clocks fall back); fired at the first"

    day = date(2026, 1, 1)
    for f in firings:
        if f.wall[:10] not in ("2026-03-29", "2026-10-25"):
            expected = datetime(day.year, day.month, day.day, 2, 30, tzinfo=BERLIN)
            assert (f.instant, f.wall, f.moved) == (expected.timestamp(), expected.isoformat(), None)
        day += timedelta(days=1)
    assert [f.instant for f in firings] == sorted({f.instant for f in firings})


def test_cron_and_interval_agree_and_nothing_depends_on_the_host_tz(monkeypatch):
    triggers = [
        *DAILY_0230.values(),
        cron("0 * * * *", "Europe/Berlin"),
        cron("*/15 * * * *", "Australia/Lord_Howe"),
        interval(1, "weeks", weekday="wednesday", at="09:00", timezone="America/New_York"),
        interval(7, "minutes", timezone="Asia/Kathmandu"),
    ]
    results = {}
    monkeypatch.setenv("TZ", "UTC")
    try:
        for host in ("UTC", "Pacific/Chatham", "America/St_Johns", "Asia/Kolkata"):
            set_host_tz(host)
            firing_module._cached_plan.cache_clear()
            results[host] = [firings_between(t, *YEAR_2026, limit=3000) for t in triggers]
    finally:
        monkeypatch.undo()
        time.tzset()
        firing_module._cached_plan.cache_clear()
    reference = results.pop("UTC")
    assert all(r == reference for r in results.values())
    assert reference[0] == reference[1]  # cron "30 2 * * *" == every 1 day at 02:30


def test_hourly_cron_on_the_fall_back_night_fires_24_times_in_25_hours():
    trigger = cron("0 * * * *", "Europe/Berlin")
    day_start, next_day = at("2026-10-25T00:00:00+02:00"), at("2026-10-26T00:00:00+01:00")
    firings = firings_between(trigger, day_start - 1, next_day - 1)
    assert next_day - day_start == 25 * 3600
    assert len(firings) == 24
    assert [f.wall[11:16] for f in firings] == [f"{h:02d}:00" for h in range(24)]
    repeated = [f for f in firings if f.moved]
    assert len(repeated) == 1 and repeated[0].instant == at("2026-10-25T00:00:00+00:00")  # the first 02:00
    assert "02:00 happens twice on 2026-10-25" in repeated[0].moved
    gaps = [b.instant - a.instant for a, b in zip(firings, firings[1:])]
    assert gaps.count(7200) == 1 and gaps.count(3600) == 22  # the second 02:00 hour is skipped


def test_every_15_minutes_across_spring_forward_has_no_duplicates():
    trigger = cron("*/15 * * * *", "Europe/Berlin")
    firings = firings_between(trigger, at("2026-03-28T23:00:00+00:00"), at("2026-03-29T22:00:00+00:00"))
    instants = [f.instant for f in firings]
    assert len(instants) == len(set(instants))
    assert all(b - a == 900 for a, b in zip(instants, instants[1:]))  # 15 minutes apart in UTC
    walls = [f.wall[11:16] for f in firings]
    assert not any(w.startswith("02:") for w in walls)  # 02:00-02:45 do not exist that night
    assert len(firings) == 23 * 4  # a 23-hour day
    merged = [f for f in firings if f.moved]
    assert [f.wall[11:16] for f in merged] == ["03:00", "03:15", "03:30", "03:45"]
    assert "02:00 does not exist on 2026-03-29" in merged[0].moved


def test_a_gap_time_after_an_instant_inside_the_gap_hour_is_not_lost():
    # at 01:15 UTC (03:15 CEST) the shifted 02:30 (01:30 UTC) is still ahead
    firings = next_firings(DAILY_0230["cron"], at("2026-03-29T01:15:00+00:00"), 2)
    assert [f.instant for f in firings] == [at("2026-03-29T01:30:00+00:00"), at("2026-03-30T00:30:00+00:00")]
    assert firings[0].moved


def test_a_cron_that_only_ever_hits_the_gap_still_fires_once_a_year():
    last_sunday_of_march = cron("30 2 25-31 3 0", "Europe/Berlin")  # day_or: 25-31 March or any Sunday in March
    only_sunday = cron("30 2 * 3 0", "Europe/Berlin", start="2026-03-28T00:00:00Z")
    firings = next_firings(only_sunday, at("2026-03-28T00:00:00+00:00"), 1)
    assert firings[0].wall == "2026-03-29T03:30:00+02:00" and firings[0].moved
    years = next_firings(cron("30 2 29 3 *", "Europe/Berlin"), at("2026-01-01T00:00:00+00:00"), 3)
    assert [f.wall for f in years] == [
        "2026-03-29T03:30:00+02:00", "2027-03-29T02:30:00+02:00", "2028-03-29T02:30:00+02:00"]
    assert len(next_firings(last_sunday_of_march, 0, 5)) == 5


def test_a_whole_skipped_day_fires_once():
    # Samoa skipped 2011-12-30 (UTC-10 -> UTC+14): that day's 12:00 shifts onto the 31st's
    trigger = interval(1, "days", at="12:00", timezone="Pacific/Apia")
    firings = firings_between(trigger, at("2011-12-28T00:00:00+00:00"), at("2012-01-02T00:00:00+00:00"))
    assert [f.wall[:10] for f in firings] == ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01", "2012-01-02"]
    assert firings[2].moved == (
        "12:00 does not exist on 2011-12-30 (clocks jump forward); fired at 2011-12-31 12:00"
        " (once, together with the regular 12:00 firing)")
    assert firings[3].instant - firings[2].instant == 86400


# -- intervals ------------------------------------------------------------------------


def test_every_5_minutes_is_aligned_to_the_epoch():
    firings = next_firings(interval(5, "minutes"), at("2026-05-01T10:03:17+00:00"), 4)
    assert [f.wall for f in firings] == [
        "2026-05-01T10:05:00+00:00", "2026-05-01T10:10:00+00:00",
        "2026-05-01T10:15:00+00:00", "2026-05-01T10:20:00+00:00"]
    assert all(f.instant % 300 == 0 and f.moved is None for f in firings)


def test_every_90_seconds_counts_from_start():
    start = "2026-05-01T10:00:07Z"
    trigger = interval(90, "seconds", start=start)
    assert [f.instant for f in next_firings(trigger, 0, 3)] == [parse_instant(start) + k * 90 for k in range(3)]
    later = next_firings(trigger, parse_instant(start) + 1000, 1)[0]
    assert later.instant == parse_instant(start) + 12 * 90


def test_hours_are_absolute_across_dst():
    trigger = interval(1, "hours", timezone="Europe/Berlin")
    firings = firings_between(trigger, at("2026-03-28T22:30:00+00:00"), at("2026-03-29T04:00:00+00:00"))
    assert all(b.instant - a.instant == 3600 for a, b in zip(firings, firings[1:]))
    assert [f.wall[11:] for f in firings[:4]] == ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00", "04:00:00+02:00"]
    assert not any(f.moved for f in firings)


def test_weekly_wednesday_0900_new_york_keeps_its_wall_time_across_dst():
    trigger = interval(1, "weeks", weekday="wednesday", at="09:00", timezone="America/New_York")
    firings = next_firings(trigger, at("2026-02-20T00:00:00+00:00"), 4)  # US DST starts Sunday 2026-03-08
    assert [f.wall for f in firings] == [
        "2026-02-25T09:00:00-05:00", "2026-03-04T09:00:00-05:00",
        "2026-03-11T09:00:00-04:00", "2026-03-18T09:00:00-04:00"]
    assert [datetime.fromtimestamp(f.instant, UTC).hour for f in firings] == [14, 14, 13, 13]


def test_every_n_days_and_weeks_count_from_the_anchor():
    days = interval(3, "days", at="06:00", timezone="Europe/Berlin", start="2026-06-01T00:00:00+02:00")
    assert [f.wall[:10] for f in next_firings(days, 0, 3)] == ["2026-06-01", "2026-06-04", "2026-06-07"]
    # without start the anchor is 1970-01-01: the same days after every restart
    unanchored = interval(3, "days", timezone="Europe/Berlin")
    first = next_firings(unanchored, at("2026-06-01T00:00:00+00:00"), 2)
    assert all((date.fromisoformat(f.wall[:10]) - date(1970, 1, 1)).days % 3 == 0 for f in first)
    fortnightly = interval(2, "weeks", weekday="friday", at="17:30", start="2026-06-03T12:00:00Z")
    assert [f.wall for f in next_firings(fortnightly, 0, 3)] == [
        "2026-06-05T17:30:00+00:00", "2026-06-19T17:30:00+00:00", "2026-07-03T17:30:00+00:00"]
    monday = interval(1, "weeks")  # default: monday 00:00
    assert date.fromisoformat(next_firings(monday, at("2026-06-03T00:00:00+00:00"))[0].wall[:10]).weekday() == 0


# -- bounds, enabled, non-time triggers ----------------------------------------------


def test_start_and_end_bound_the_firings_inclusively():
    trigger = cron("0 12 * * *", start="2026-01-10T12:00:00Z", end="2026-01-12T12:00:00")  # naive end: UTC
    firings = firings_between(trigger, 0, at("2027-01-01T00:00:00+00:00"))
    assert [f.wall for f in firings] == [
        "2026-01-10T12:00:00+00:00", "2026-01-11T12:00:00+00:00", "2026-01-12T12:00:00+00:00"]
    assert next_firings(trigger, at("2026-01-12T12:00:00+00:00"), 5) == []
    ended = interval(5, "minutes", end="2020-01-01T00:00:00Z")
    assert next_firings(ended, at("2026-01-01T00:00:00+00:00")) == []


def test_firings_between_excludes_start_includes_end_and_stops_at_the_limit():
    trigger = interval(1, "hours")
    firings = firings_between(trigger, 3600, 5 * 3600)
    assert [f.instant for f in firings] == [7200, 10800, 14400, 18000]
    assert len(firings_between(trigger, 0, 1e6, limit=3)) == 3
    assert firings_between(trigger, 10, 10) == []


def test_next_firings_is_strictly_after():
    trigger = cron("0 * * * *")
    exact = at("2026-01-01T05:00:00+00:00")
    assert next_firings(trigger, exact, 1)[0].instant == exact + 3600
    assert next_firings(trigger, exact - 0.5, 1)[0].instant == exact
    assert next_firings(trigger, exact, 0) == []


def test_disabled_and_non_time_triggers_have_no_firings():
    assert next_firings(cron("* * * * *", enabled=False), 0, 5) == []
    assert firings_between(interval(1, "seconds", enabled=False), 0, 100) == []
    for kind in ("manual", "webhook", "file", "git", "workflow"):
        assert next_firings(Trigger("x", kind, {"path": "/tmp", "cron": "nonsense"}), 0, 3) == []


def test_firing_is_a_frozen_record():
    firing = next_firings(cron("0 0 * * *"), 0)[0]
    assert firing == Firing(86400.0, "1970-01-02T00:00:00+00:00", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        firing.instant = 1.0  # type: ignore[misc]


def test_parse_instant():
    assert parse_instant("2026-03-28T12:00:00Z") == parse_instant("2026-03-28T12:00:00") == 1774699200.0
    assert parse_instant("2026-03-28T13:00:00+01:00") == 1774699200.0
    for bad in ("2026-03-28", "tomorrow", ""):
        with pytest.raises(ValueError):
            parse_instant(bad)


# -- invalid triggers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "config, field, message",
    [
        ({"every": 1, "unit": "days", "at": "25:99"}, "at",
         "Invalid time format for a daily job (valid format is HH:MM(:SS)?)"),
        ({"every": 1, "unit": "weeks", "weekday": "monday", "at": "24:00"}, "at",
         "Invalid number of hours (24 is not between 0 and 23)"),
        ({"every": 1, "unit": "days", "at": "9:00"}, "at", "Invalid time format for a daily job"),
        ({"every": 1, "unit": "hours", "at": "02:30"}, "at", "'at' is only used with unit 'days' or 'weeks'"),
        ({"every": 1, "unit": "days", "weekday": "monday"}, "weekday", "'weekday' is only used with unit 'weeks'"),
        ({"every": 1, "unit": "weeks", "weekday": "Funday"}, "weekday", "is not one of monday"),
        ({"every": 1, "unit": "fortnights"}, "unit", "Invalid unit (valid units are `seconds`"),
        ({"every": 0, "unit": "days"}, "every", "at least 1"),
        ({"every": True, "unit": "days"}, "every", "at least 1"),
        ({"every": 1, "unit": "days", "timezone": "Europe/Berlln"}, "timezone", "unknown time zone"),
        ({"every": 1, "unit": "days", "start": "2026-01-01"}, "start", "not an ISO 8601 date-time"),
        ({"every": 1, "unit": "days", "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
         "start", "is after end"),
        ({"every": 1, "unit": "days", "enabled": "no"}, "enabled", "true or false"),
    ],
)
def test_invalid_interval_triggers_raise_firing_error(config, field, message):
    with pytest.raises(FiringError) as info:
        next_firings(Trigger("nightly", "interval", config), 0)
    assert message in str(info.value)
    assert info.value.field == field and info.value.trigger == "nightly"
    assert str(info.value).startswith("trigger 'nightly': ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "expression, message",
    [("0 0 * *", "has 4 field(s)"), ("0 0 * * * *", "has 6 field(s)"), ("@daily", "has 1 field(s)"),
     ("61 * * * *", "does not parse"), ("0 0 31 2 *", "never matches"), ("", "five-field")],
)
def test_invalid_cron_raises_firing_error(expression, message):
    with pytest.raises(FiringError) as info:
        firings_between(cron(expression), 0, 1e9)
    assert message in str(info.value) and info.value.field == "cron"


# -- the fast cron walk equals croniter ---------------------------------------------------


def _random_field(rng: random.Random, low: int, high: int) -> str:
    choice = rng.randrange(5)
    if choice == 0:
        return "*"
    if choice == 1:
        return f"*/{rng.randint(2, max(2, (high - low) // 2))}"
    if choice == 2:
        a = rng.randint(low, high)
        return f"{a}-{rng.randint(a, high)}"
    if choice == 3:
        return ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), rng.randint(1, 3))))
    a = rng.randint(low, high)
    return f"{a}-{high}/{rng.randint(1, 3)}"


def test_the_day_by_day_cron_walk_gives_croniters_answers():
    rng = random.Random(20260329)
    checked = 0
    for _ in range(150):
        expression = " ".join([
            _random_field(rng, 0, 59), _random_field(rng, 0, 23), _random_field(rng, 1, 31),
            _random_field(rng, 1, 12), _random_field(rng, 0, 6)])
        try:
            plan = firing_module._plan("t", "cron", {"cron": expression})
        except FiringError:
            continue  # never matches (e.g. 30-31 of February)
        assert plan.fields is not None
        origin = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(2 * 365 * 1440))
        fast = list(_take(firing_module._walls(plan, origin), 40))
        it = croniter(expression, origin)
        slow = [it.get_next(datetime) for _ in range(len(fast))]
        assert fast == slow, expression
        checked += 1
    assert checked > 100


def _take(iterable, n):
    for i, item in enumerate(iterable):
        if i >= n:
            return
        yield item


def test_special_cron_syntax_goes_through_croniter():
    last_day = cron("0 0 L * *", "Europe/Berlin")
    assert [f.wall[:10] for f in next_firings(last_day, at("2026-01-15T00:00:00+00:00"), 2)] == [
        "2026-01-31", "2026-02-28"]
    second_friday = cron("0 12 * * 5#2")
    assert next_firings(second_friday, at("2026-01-01T00:00:00+00:00"))[0].wall == "2026-01-09T12:00:00+00:00"


# -- speed ------------------------------------------------------------------------------


def _best_of(fn, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_speed():
    after = at("2026-03-28T12:00:00+00:00")
    typical = (*DAILY_0230.values(), cron("*/5 9-17 * * 1-5", "America/New_York"), interval(5, "minutes"),
               interval(2, "weeks", weekday="friday", at="17:30", timezone="Europe/Berlin"))
    for trigger in typical:
        next_firings(trigger, after, 10)  # warm the plan cache
        per_call = _best_of(lambda: [next_firings(trigger, after, 10) for _ in range(100)]) / 100
        assert per_call < 0.001, (trigger, per_call)
    for trigger in DAILY_0230.values():
        year = _best_of(lambda: firings_between(trigger, *YEAR_2026))
        assert year < 0.05, (trigger, year)


# -- taskloom next ------------------------------------------------------------------------

NEXT_DOC = make_doc(
    [{"id": "report", "type": "noop"}],
    name="nightly",
    triggers=[
        {"id": "berlin_cron", "type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        {"id": "berlin_daily", "type": "interval", "every": 1, "unit": "days", "at": "02:30",
         "timezone": "Europe/Berlin"},
        {"id": "paused", "type": "interval", "every": 5, "unit": "minutes", "enabled": False},
        {"id": "by_hand", "type": "manual"},
    ],
)


@pytest.fixture
def invoke(home, tmp_path):
    added = "next" not in cli.commands
    if added:
        cli.add_command(next_, "next")
    runner = CliRunner()

    def call(*args: str):
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    def store(doc):
        path = tmp_path / f"{doc['name']}.json"
        path.write_text(json.dumps(doc))
        result = call("import", str(path))
        assert result.exit_code == 0, result.output

    call.store = store
    yield call
    if added:
        cli.commands.pop("next", None)


def test_next_json_around_the_berlin_spring_forward(invoke):
    invoke.store(NEXT_DOC)
    result = invoke("next", "nightly", "-n", "2", "--after", "2026-03-28T12:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    moved = "02:30 does not exist on 2026-03-29 (clocks jump forward); fired at 03:30"
    for trigger in ("berlin_cron", "berlin_daily"):
        assert [r for r in rows if r["trigger"] == trigger] == [
            {"trigger": trigger, "instant": "2026-03-29T01:30:00+00:00", "wall": "2026-03-29T03:30:00+02:00",
             "timezone": "Europe/Berlin", "moved": moved},
            {"trigger": trigger, "instant": "2026-03-30T00:30:00+00:00", "wall": "2026-03-30T02:30:00+02:00",
             "timezone": "Europe/Berlin", "moved": None},
        ]
    assert {r["trigger"] for r in rows} == {"berlin_cron", "berlin_daily"}  # disabled and manual: none


def test_next_table_flags_moved_firings(invoke):
    invoke.store(NEXT_DOC)
    result = invoke("next", "nightly", "-n", "3", "--after", "2026-10-24T12:00:00Z")
    assert result.exit_code == 0, result.output
    assert "berlin_cron" in result.output and "berlin_daily" in result.output
    assert "Sun 2026-10-25 02:30:00 +02:00" in result.output and "2026-10-25 00:30:00Z" in result.output
    words = " ".join(result.output.split())
    assert "DST: 02:30 happens twice on 2026-10-25 (clocks fall back); fired at the first" in words
    assert "trigger 'paused' is disabled" in result.output


def test_next_without_time_triggers_and_unknown_workflow(invoke):
    invoke.store(make_doc([{"id": "a", "type": "noop"}], name="by-hand", triggers=[{"id": "go", "type": "manual"}]))
    plain = invoke("next", "by-hand")
    assert plain.exit_code == 0 and "has no time triggers" in plain.output
    assert json.loads(invoke("next", "by-hand", "--json").output) == []
    missing = invoke("next", "nope")
    assert missing.exit_code == 1 and "no workflow named 'nope'" in missing.output
    bad = invoke("next", "by-hand", "--after", "yesterday")
    assert bad.exit_code == 2 and "not an ISO 8601 date-time" in bad.output


def test_next_defaults_to_now(invoke):
    invoke.store(NEXT_DOC)
    before = time.time()
    rows = json.loads(invoke("next", "nightly", "-n", "1", "--json").output)
    assert len(rows) == 2
    assert all(before < datetime.fromisoformat(r["instant"]).timestamp() <= before + 86400 + 3600 for r in rows)
