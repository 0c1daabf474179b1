"""Cron expressions as CronJob reads them, on a hand-turned clock: DST changes in a time zone,
Feb 29, macros, and what CronJob refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.core.cron import MACROS, MAX_COUNTED, Cron, InvalidCron

BERLIN = ZoneInfo("Europe/Berlin")


def ticks(cron: Cron, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        moment = cron.next_after(moment)
        found.append(moment)
    return found


def local(moments: list[datetime], zone: ZoneInfo = BERLIN) -> list[str]:
    return [m.astimezone(zone).isoformat() for m in moments]


def test_a_nightly_run_in_berlin_runs_once_on_the_night_the_clocks_spring_forward() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that night.
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    got = local(ticks(cron, datetime(2026, 3, 28, 12, tzinfo=BERLIN), 3))
    assert got == [
        "2026-03-29T03:00:00+02:00",  # once, right after the change (Debian cron's rule)
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_a_nightly_run_in_berlin_runs_once_on_the_night_the_clocks_fall_back() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, the run does not.
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    got = local(ticks(cron, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2))
    assert got == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_an_hourly_run_keeps_every_real_hour_across_the_fall_back() -> None:
    cron = Cron.parse("@hourly", "Europe/Berlin")
    got = ticks(cron, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 3)
    assert [g - datetime(2026, 10, 25, tzinfo=UTC) for g in got] == [
        timedelta(hours=1),  # 02:00 CEST
        timedelta(hours=2),  # 02:00 CET
        timedelta(hours=3),
    ]


def test_the_latest_tick_is_found_backwards_across_a_dst_change() -> None:
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    after_change = datetime(2026, 3, 29, 3, 10, tzinfo=BERLIN)
    assert local([cron.latest_at_or_before(after_change)]) == ["2026-03-29T03:00:00+02:00"]


def test_feb_29_comes_every_four_years() -> None:
    cron = Cron.parse("0 12 29 2 *", None)
    got = ticks(cron, datetime(2025, 1, 1, tzinfo=UTC), 2)
    assert got == [datetime(2028, 2, 29, 12, tzinfo=UTC), datetime(2032, 2, 29, 12, tzinfo=UTC)]
    assert cron.latest_at_or_before(datetime(2031, 1, 1, tzinfo=UTC)) == got[0]
    assert cron.count_between(datetime(2024, 3, 1, tzinfo=UTC), got[1]) == 1


def test_a_tick_at_the_very_moment_counts_as_at_or_before() -> None:
    cron = Cron.parse("*/15 * * * *", None)
    moment = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    assert cron.latest_at_or_before(moment) == moment
    assert cron.latest_at_or_before(moment - timedelta(microseconds=1)) == moment - timedelta(
        minutes=15
    )
    assert cron.next_after(moment) == moment + timedelta(minutes=15)


@pytest.mark.parametrize(("macro", "fields"), list(MACROS.items()))
def test_cronjob_macros_are_their_five_fields(macro: str, fields: str) -> None:
    start = datetime(2026, 5, 17, 13, 21, tzinfo=UTC)
    assert ticks(Cron.parse(macro, None), start, 3) == ticks(Cron.parse(fields, None), start, 3)


def test_names_and_question_marks_read_as_cronjob_reads_them() -> None:
    named = Cron.parse("0 3 ? JAN-MAR MON-FRI", None)
    plain = Cron.parse("0 3 * 1-3 1-5", None)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert ticks(named, start, 5) == ticks(plain, start, 5)


@pytest.mark.parametrize(
    ("schedule", "zone", "says"),
    [
        ("CRON_TZ=Europe/Berlin 0 3 * * *", None, "CRON_TZ= or TZ= prefix"),
        ("TZ=UTC 0 3 * * *", None, "CRON_TZ= or TZ= prefix"),
        ("0 0 3 * * *", None, "five fields"),  # a seconds field
        ("0 3 L * *", None, "five fields"),
        ("0 3 * * 5L", None, "five fields"),
        ("0 3 * * MON#2", None, "five fields"),
        ("0 3 15W * *", None, "five fields"),
        ("@every 5m", None, "five fields"),
        ("@reboot", None, "five fields"),
        ("61 3 * * *", None, "spec.schedule"),
        ("0 3 31 2 *", None, "spec.schedule"),  # never happens
        ("0 3 * * *", "Mars/Olympus_Mons", "IANA time zone"),
        ("0 3 * * *", "../../etc/passwd", "IANA time zone"),
    ],
)
def test_what_cronjob_refuses_is_refused_with_a_message(
    schedule: str, zone: str | None, says: str
) -> None:
    with pytest.raises(InvalidCron, match=says.replace("(", r"\(")):
        Cron.parse(schedule, zone)


def test_a_count_over_years_is_extrapolated_not_walked() -> None:
    cron = Cron.parse("* * * * *", None)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    assert cron.count_between(start, start + timedelta(minutes=10)) == 9
    assert cron.count_between(start, start + timedelta(minutes=MAX_COUNTED + 1)) == MAX_COUNTED
    assert cron.count_between(start, start + timedelta(days=365)) == 365 * 24 * 60 - 1
