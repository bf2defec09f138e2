"""Pure: reading GitHub's quota headers, keeping the latest, and pacing runs by what is left."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from honk_app.github.ratelimit import (
    MAX_WAIT_S,
    SLOW_EDIT_INTERVAL_S,
    WAIT_EDIT_INTERVAL_S,
    Pace,
    Quota,
    QuotaBook,
    decide,
    latest,
    quota_from_headers,
    thresholds,
)

NOW = datetime(2025, 5, 1, 13, 50, tzinfo=UTC).timestamp()
RESET = int(datetime(2025, 5, 1, 14, 5, tzinfo=UTC).timestamp())  # 15 minutes after NOW


def headers(**values: str) -> dict[str, str]:
    base = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4990",
        "x-ratelimit-reset": str(RESET),
        "x-ratelimit-used": "10",
        "x-ratelimit-resource": "core",
    }
    base.update({key.replace("_", "-"): value for key, value in values.items()})
    return {key: value for key, value in base.items() if value != "-"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (headers(), Quota(5000, 4990, RESET)),
        (headers(x_ratelimit_resource="-"), Quota(5000, 4990, RESET)),  # core unless said
        (headers(x_ratelimit_resource="graphql"), None),  # its own quota, in points
        (headers(x_ratelimit_resource="search"), None),
        (headers(x_ratelimit_remaining="-"), None),  # GitHub Enterprise with limits off
        (headers(x_ratelimit_limit="many"), None),
        (headers(x_ratelimit_limit="0"), None),
        (headers(x_ratelimit_remaining="-3"), None),
        (headers(x_ratelimit_remaining="6000"), Quota(5000, 5000, RESET)),
        ({}, None),
    ],
)
def test_the_core_quota_is_read_from_an_answers_headers(
    given: dict[str, str], expected: Quota | None
) -> None:
    assert quota_from_headers(given) == expected


@pytest.mark.parametrize(
    ("known", "seen", "kept"),
    [
        (None, Quota(5000, 10, RESET), Quota(5000, 10, RESET)),
        (Quota(5000, 10, RESET), Quota(5000, 4999, RESET + 3600), Quota(5000, 4999, RESET + 3600)),
        (Quota(5000, 4999, RESET + 3600), Quota(5000, 10, RESET), Quota(5000, 4999, RESET + 3600)),
        (Quota(5000, 10, RESET), Quota(5000, 12, RESET), Quota(5000, 10, RESET)),  # late answer
        (Quota(5000, 12, RESET), Quota(5000, 10, RESET), Quota(5000, 10, RESET)),
    ],
)
def test_answers_arriving_out_of_order_keep_the_latest_quota(
    known: Quota | None, seen: Quota, kept: Quota
) -> None:
    assert latest(known, seen) == kept


@pytest.mark.parametrize(
    ("limit", "slow", "wait"),
    [(5000, 500, 100), (15000, 1500, 300), (12500, 1250, 250), (1000, 500, 100), (60, 30, 6)],
)
def test_thresholds_are_a_fraction_of_the_limit_with_a_floor(
    limit: int, slow: int, wait: int
) -> None:
    assert thresholds(limit) == (slow, wait)


LOW = (
    "GitHub's API quota for this installation is low ({left} of 5,000 left, resets 14:05 UTC): "
    "Honk updates this comment less often."
)
GONE = "GitHub's API quota for this installation is nearly used up ({left} of 5,000 left, "
WAITING = GONE + "resets 14:05 UTC): Honk is waiting for it to reset before starting."
RARELY = GONE + "resets 14:05 UTC): Honk updates this comment rarely until then."


@pytest.mark.parametrize(
    ("remaining", "starting", "pace", "note", "interval", "wait_s"),
    [
        (4999, False, Pace.NORMAL, "", 3.0, 0.0),
        (501, True, Pace.NORMAL, "", 3.0, 0.0),
        (500, False, Pace.SLOW, LOW.format(left=500), SLOW_EDIT_INTERVAL_S, 0.0),
        (120, True, Pace.SLOW, LOW.format(left=120), SLOW_EDIT_INTERVAL_S, 0.0),  # starts anyway
        (100, False, Pace.WAIT, RARELY.format(left=100), WAIT_EDIT_INTERVAL_S, 0.0),
        (100, True, Pace.WAIT, WAITING.format(left=100), WAIT_EDIT_INTERVAL_S, 901.0),
        (0, True, Pace.WAIT, WAITING.format(left=0), WAIT_EDIT_INTERVAL_S, 901.0),
    ],
)
def test_what_is_left_sets_the_pace_and_the_sentence(
    remaining: int, starting: bool, pace: Pace, note: str, interval: float, wait_s: float
) -> None:
    decision = decide(Quota(5000, remaining, RESET), NOW, starting=starting, base_interval_s=3.0)
    assert decision.pace is pace
    assert decision.note == note
    assert decision.edit_interval_s == interval
    assert decision.wait_s == pytest.approx(wait_s)


@pytest.mark.parametrize(
    ("quota", "now"),
    [
        (None, NOW),  # GitHub never said: nothing to pace by
        (Quota(5000, 0, RESET), RESET),  # the window has reset: the next answer will tell
        (Quota(5000, 0, RESET), RESET + 60),
    ],
)
def test_without_a_current_quota_the_pace_is_normal(quota: Quota | None, now: float) -> None:
    decision = decide(quota, now, starting=True, base_interval_s=3.0)
    assert (decision.pace, decision.note, decision.wait_s) == (Pace.NORMAL, "", 0.0)
    assert decision.edit_interval_s == 3.0


def test_a_wait_is_bounded_whatever_the_reset_claims() -> None:
    far = Quota(5000, 0, int(NOW + 10 * 24 * 3600))  # a clock ten days off
    assert decide(far, NOW, starting=True).wait_s == MAX_WAIT_S


def test_the_book_keeps_each_installation_apart_and_survives_threads() -> None:
    book = QuotaBook()
    book.observe(2, headers(x_ratelimit_remaining="4000"))
    book.observe(2, headers(x_ratelimit_resource="graphql", x_ratelimit_remaining="1"))

    def spend(start: int) -> None:
        for remaining in range(start, start - 200, -1):
            book.observe(1, headers(x_ratelimit_remaining=str(remaining)))

    threads = [threading.Thread(target=spend, args=(4000 - 200 * n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert book.get(1) == Quota(5000, 4000 - 200 * 8 + 1, RESET)
    assert book.get(2) == Quota(5000, 4000, RESET)
    assert book.get(3) is None
