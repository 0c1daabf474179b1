"""Cron expressions as a CronJob reads them, in an IANA time zone. No I/O.

The grammar is CronJob's (robfig/cron's standard parser): five fields, names for months and
days, ``?`` for "any" in the day fields, and the ``@hourly``-style macros. Anything else that a
cron dialect may offer (a seconds field, ``L``, ``W``, ``#``, ``CRON_TZ=``) is refused, as
Kubernetes refuses it, so a schedule that works here works in a CronJob and back.

The arithmetic is cronsim's, which follows Debian's cron across DST changes: a time that a
spring-forward skips fires once, right after the change, and a time that a fall-back repeats
fires once, at its first occurrence. CronJob (robfig/cron) instead drops the skipped time and
may fire the repeated one twice; here every day keeps exactly its one run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

# robfig/cron's descriptors that CronJob documents (and @every, which it does not, is refused).
MACROS: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ATOM = r"(\*|\?|[0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?(/[0-9]+)?"
FIELD = re.compile(rf"^{_ATOM}(,{_ATOM})*$")
MAX_COUNTED = 1000  # ticks counted one by one; beyond, the count is extrapolated


class InvalidCron(ValueError):
    """A schedule or time zone that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Cron:
    expression: str  # five fields, macros expanded
    zone: ZoneInfo

    @classmethod
    def parse(cls, schedule: str, time_zone: str | None) -> Cron:
        text = " ".join(schedule.split())
        if "TZ" in text:  # Kubernetes' own test: a CRON_TZ= or TZ= prefix
            raise InvalidCron(
                "spec.schedule must not carry a CRON_TZ= or TZ= prefix: name the time zone "
                "in spec.timeZone"
            )
        expression = MACROS.get(text.lower(), text) if text.startswith("@") else text
        fields = expression.split(" ")
        if len(fields) != 5 or not all(FIELD.match(f) for f in fields):
            raise InvalidCron(
                f"spec.schedule {schedule!r} is not a CronJob schedule: five fields (minute "
                "hour day-of-month month day-of-week) or one of " + ", ".join(MACROS)
            )
        # `?` is "any" in robfig/cron's day fields; cronsim spells it `*`.
        expression = " ".join(f.replace("?", "*") for f in fields)
        zone = _zone(time_zone)
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as error:
            raise InvalidCron(f"spec.schedule {schedule!r}: {error}") from None
        return cls(expression, zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`, in UTC."""
        start = moment.astimezone(self.zone).replace(microsecond=0)
        return next(iter(CronSim(self.expression, start))).astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last tick at or before `moment`, in UTC."""
        start = moment.astimezone(self.zone).replace(microsecond=0) + timedelta(seconds=1)
        return next(iter(CronSim(self.expression, start, reverse=True))).astimezone(UTC)

    def count_between(self, after: datetime, before: datetime) -> int:
        """Ticks strictly between `after` and `before`: counted up to MAX_COUNTED, then
        extrapolated from their mean spacing, so a clock off by years costs no more."""
        count, tick = 0, after
        for tick in CronSim(self.expression, after.astimezone(self.zone).replace(microsecond=0)):
            if tick >= before:
                return count
            count += 1
            if count == MAX_COUNTED:
                break
        else:
            return count
        spacing = (tick - after) / count
        return count + int((before - tick) / spacing) - (0 if (before - tick) % spacing else 1)


def _zone(name: str | None) -> ZoneInfo:
    if name is None or name == "":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCron(
            f"spec.timeZone {name!r} is not an IANA time zone name (such as Europe/Berlin)"
        ) from None
