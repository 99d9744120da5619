"""What the scheduler does with due firings: run them, record them as missed, or hold them back.

Pure decisions, taking time as an argument:

* :func:`plan_due` sorts the instants a time trigger reached since it was last
  looked at. An instant reached within ``grace`` seconds is on time and runs.
  Older ones were missed (the scheduler was down or stalled), and
  ``settings.catchup`` says what happens to them: ``none`` records them all as
  missed, ``latest`` runs the most recent one, ``all`` runs every one in
  order, up to ``catchup_limit``.
* :func:`overlap_action` applies ``settings.overlap`` to a firing that comes
  while runs of the same workflow are active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["Decision", "plan_due", "overlap_action", "MISFIRE_GRACE"]

#: Seconds a firing may be late and still count as on time.
MISFIRE_GRACE = 60.0


@dataclass(frozen=True)
class Decision:
    instant: float
    action: str  # "run" | "missed"
    reason: str = ""


def plan_due(
    instants: Sequence[float], now: float, *, catchup: str, limit: int = 100, grace: float = MISFIRE_GRACE
) -> list[Decision]:
    """Decide each due instant (ascending, all <= now)."""
    late = [i for i in instants if now - i > grace]
    on_time = [i for i in instants if now - i <= grace]
    run_late: set[float] = set()
    if catchup == "all":
        run_late = set(late[:limit])
    elif catchup == "latest" and late:
        run_late = {late[-1]}
    decisions = []
    for instant in late:
        if instant in run_late:
            decisions.append(Decision(instant, "run", f"caught up {now - instant:.0f} s late (catchup {catchup})"))
        else:
            decisions.append(Decision(instant, "missed", _missed_reason(now - instant, catchup, limit)))
    decisions.extend(Decision(i, "run") for i in on_time)
    return decisions


def _missed_reason(late_by: float, catchup: str, limit: int) -> str:
    why = {
        "none": "settings.catchup is 'none'",
        "latest": "settings.catchup is 'latest' and a later missed instant ran",
        "all": f"more than catchup_limit ({limit}) instants were missed",
    }[catchup]
    return f"the scheduler was not running {late_by:.0f} s ago when this instant came; {why}"


def overlap_action(policy: str, active: int, max_active: int) -> str:
    """``start``, ``skip``, ``queue`` or ``cancel_previous`` for a firing while ``active`` runs are active."""
    if active == 0:
        return "start"
    if policy == "allow":
        return "start" if active < max_active else "skip"
    if policy in ("queue", "cancel_previous"):
        return policy
    return "skip"
