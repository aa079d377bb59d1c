"""Delivery state graph, retry schedule table and host circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federation.delivery import (
    DEFAULT_POLICY,
    TRANSITIONS,
    Delivered,
    DeliveryState,
    GiveUp,
    HostBackoff,
    HostBackoffPolicy,
    InvalidTransition,
    RetryAt,
    RetryPolicy,
    check_transition,
    decide_retry,
    is_terminal,
    parse_retry_after,
    retry_schedule,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
S = DeliveryState


def test_state_graph() -> None:
    assert set(TRANSITIONS) == set(DeliveryState)
    assert TRANSITIONS[S.PENDING] == {S.PENDING, S.SENT, S.FAILED, S.SKIPPED}
    for terminal in (S.SENT, S.FAILED, S.SKIPPED):
        assert is_terminal(terminal)
        with pytest.raises(
            InvalidTransition, match=f"^delivery cannot go from {terminal} to pending$"
        ):
            check_transition(terminal, S.PENDING)
    assert not is_terminal(S.PENDING)
    check_transition(S.PENDING, S.PENDING)
    assert [state.value for state in DeliveryState] == ["pending", "sent", "failed", "skipped"]


def test_retry_schedule_table() -> None:
    # n**4 + 15 s after failed attempt n, no jitter; attempt 16 is the last.
    assert [int(delay.total_seconds()) for delay in retry_schedule()] == [
        16, 31, 96, 271, 640, 1311, 2416, 4111, 6576, 10015, 14656, 20751, 28576, 38431, 50640,
    ]  # fmt: skip
    total = sum(retry_schedule(), timedelta())
    assert timedelta(days=2) < total < timedelta(days=2, hours=2)
    jittered = sum(retry_schedule(random=0.999999), timedelta())
    assert jittered - total < timedelta(seconds=30 * sum(range(2, 17)))  # 30 * (2 + ... + 16)


@pytest.mark.parametrize(
    ("attempts", "random", "seconds"),
    [(1, 0.0, 16), (1, 0.5, 46), (2, 0.5, 31 + 45), (15, 0.25, 50640 + 120)],
)
def test_jitter_is_random_times_30_times_attempts_plus_one(
    attempts: int, random: float, seconds: int
) -> None:
    decision = decide_retry(attempts, 503, now=NOW, random=random)
    assert decision == RetryAt(NOW + timedelta(seconds=seconds), "HTTP 503")


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (200, Delivered()),
        (202, Delivered()),
        (204, Delivered()),
        (400, GiveUp("permanent HTTP 400")),
        (403, GiveUp("permanent HTTP 403")),
        (404, GiveUp("permanent HTTP 404")),
        (410, GiveUp("permanent HTTP 410")),
        (413, GiveUp("permanent HTTP 413")),
        (401, RetryAt(NOW + timedelta(seconds=31), "HTTP 401")),
        (408, RetryAt(NOW + timedelta(seconds=31), "HTTP 408")),
        (429, RetryAt(NOW + timedelta(seconds=31), "HTTP 429")),
        (500, RetryAt(NOW + timedelta(seconds=31), "HTTP 500")),
        (502, RetryAt(NOW + timedelta(seconds=31), "HTTP 502")),
        (307, RetryAt(NOW + timedelta(seconds=31), "HTTP 307")),
        (None, RetryAt(NOW + timedelta(seconds=31), "network error")),
    ],
)
def test_status_classification(status: int | None, decision: object) -> None:
    assert decide_retry(2, status, now=NOW, random=0.0) == decision


def test_decisions_name_the_next_state() -> None:
    assert Delivered().state is S.SENT
    assert GiveUp("x").state is S.FAILED
    assert RetryAt(NOW, "x").state is S.PENDING


def test_gives_up_after_sixteen_attempts() -> None:
    assert isinstance(decide_retry(15, None, now=NOW, random=0.0), RetryAt)
    assert decide_retry(16, None, now=NOW, random=0.0) == GiveUp(
        "network error, gave up after 16 attempts"
    )
    assert decide_retry(16, 503, now=NOW, random=0.0) == GiveUp(
        "HTTP 503, gave up after 16 attempts"
    )
    assert decide_retry(16, 200, now=NOW, random=0.0) == Delivered()
    short = RetryPolicy(max_attempts=3)
    assert isinstance(decide_retry(3, 500, now=NOW, random=0.0, policy=short), GiveUp)


@pytest.mark.parametrize(
    ("retry_after", "at"),
    [
        ("120", NOW + timedelta(seconds=120)),
        ("0", NOW + timedelta(seconds=15)),  # never faster than the base delay
        ("Wed, 01 May 2024 13:00:00 GMT", NOW + timedelta(hours=1)),
        ("Wed, 01 May 2024 11:00:00 GMT", NOW + timedelta(seconds=15)),  # in the past
        ("999999999", NOW + timedelta(days=1)),  # capped
        ("soon", NOW + timedelta(seconds=10**4 + 15)),  # invalid: normal backoff
    ],
)
def test_retry_after_is_honoured(retry_after: str, at: datetime) -> None:
    decision = decide_retry(10, 429, now=NOW, random=0.0, retry_after=retry_after)
    assert isinstance(decision, RetryAt)
    assert decision.at == at


def test_retry_after_does_not_rescue_permanent_errors() -> None:
    assert decide_retry(1, 404, now=NOW, random=0.0, retry_after="5") == GiveUp(
        "permanent HTTP 404"
    )


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after(" 30 ", NOW) == timedelta(seconds=30)
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", NOW) == timedelta(seconds=30)


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match=r"^attempts counts the attempt just made"):
        decide_retry(0, 500, now=NOW, random=0.0)
    with pytest.raises(ValueError, match=r"^random must be in \[0, 1\), got 1\.0$"):
        decide_retry(1, 500, now=NOW, random=1.0)
    assert DEFAULT_POLICY.max_attempts == 16


def test_host_backoff_opens_doubles_caps_and_resets() -> None:
    host = HostBackoff("b.example")
    assert host.is_available(NOW)
    rests = []
    moment = NOW
    for _ in range(12):
        host = host.after_attempt(None, now=moment)
        assert host.available_at is not None
        assert not host.is_available(moment)
        rests.append(host.available_at - moment)
        moment = host.available_at
        assert host.is_available(moment)
    assert [int(rest.total_seconds()) for rest in rests] == [
        30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600,
    ]  # fmt: skip
    assert host.consecutive_failures == 12
    assert host.after_attempt(202, now=moment) == HostBackoff("b.example")
    # A 4xx proves the host is up, even if that delivery failed for good.
    assert host.after_attempt(410, now=moment) == HostBackoff("b.example")


def test_host_backoff_counts_overload_and_honours_retry_after() -> None:
    host = HostBackoff("b.example").after_attempt(429, now=NOW, retry_after="600")
    assert host == HostBackoff("b.example", 1, NOW + timedelta(seconds=600))
    host = host.after_attempt(503, now=NOW, retry_after="1")
    assert host == HostBackoff("b.example", 2, NOW + timedelta(seconds=60))
    policy = HostBackoffPolicy(base=timedelta(seconds=1), cap=timedelta(seconds=5))
    assert policy.delay(0) == timedelta(0)
    assert policy.delay(1000) == timedelta(seconds=5)
