"""The bot's uplink loss controller (media/uplink_loss.py), on made-up report sequences."""

from __future__ import annotations

import pytest

from media.uplink_loss import MAX_PERCENT, UplinkLoss

pytestmark = pytest.mark.timeout(10)


def feed(loss: UplinkLoss, fractions: list[int], start: float = 0.0, every: float = 1.0) -> int:
    percent = 0
    for i, fraction in enumerate(fractions):
        percent = loss.add(fraction, start + i * every)
    return percent


def test_clean_reports_keep_it_at_exactly_zero() -> None:
    loss = UplinkLoss()
    assert feed(loss, [0] * 100) == 0
    assert loss.average == 0.0 and loss.peak == 0 and loss.reports == 100


def test_rises_within_a_few_reports_of_loss() -> None:
    loss = UplinkLoss()
    feed(loss, [0] * 10)
    five = round(0.05 * 256)  # 5 % in RFC 3550's 8-bit fraction
    assert loss.add(five, 10.0) >= 3  # one report (1 s time constant): 63 % of the way
    assert feed(loss, [five] * 3, start=11.0) == 5


def test_falls_slowly_then_back_to_zero() -> None:
    loss = UplinkLoss()
    feed(loss, [round(0.10 * 256)] * 10)
    assert loss.percent == 10
    assert feed(loss, [0] * 5, start=10.0) >= 5  # 10 s time constant: still protecting
    assert feed(loss, [0] * 60, start=15.0) == 0
    assert loss.peak == 10


def test_clamped_to_twenty_percent_and_odd_input() -> None:
    loss = UplinkLoss()
    assert feed(loss, [255] * 20) == MAX_PERCENT
    loss = UplinkLoss()
    assert feed(loss, [-5, 10_000, 0]) <= MAX_PERCENT  # out of range fractions clamped
    loss = UplinkLoss()
    loss.add(128, 5.0)
    assert loss.add(0, 4.0) >= 0  # a clock that goes back counts as no time elapsed
