"""The quantities users type: durations from nanoseconds to days, price distances in ticks, basis
points, percent or price, and fees; read once at the edge, written back in their canonical unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from quotewise.errors import ConfigError
from quotewise.parsing import (
    Distance,
    Duration,
    PriceDistance,
    format_duration,
    parse_distance,
    parse_duration,
    parse_fee,
)

SECOND = 10**9


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("250us", 250_000),
        ("1ms", 1_000_000),
        ("1.5ms", 1_500_000),
        ("2s", 2 * SECOND),
        ("5m", 300 * SECOND),
        ("1h", 3_600 * SECOND),
        ("1.5h", 5_400 * SECOND),
        ("2d", 172_800 * SECOND),
        ("0.5 d", 43_200 * SECOND),
        ("0", 0),
        ("5000", 5 * SECOND),  # a bare number is milliseconds: --interval 5000 is 5 s
        (5000, 5 * SECOND),
        (0.5, 500_000),
    ],
)
def test_durations_take_every_unit_and_a_bare_number_is_milliseconds(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["1w", "2 days", "1hr", "-1h", "fast", "nan", "inf"])
def test_an_unknown_unit_or_a_negative_duration_is_named(bad):
    with pytest.raises(ConfigError, match=r"max_loss_window"):
        parse_duration(bad, "max_loss_window")


def test_the_error_shows_hours_and_days_among_the_examples():
    with pytest.raises(ConfigError, match=r"1h, 2d"):
        parse_duration("soon", "pause_for")


@pytest.mark.parametrize(
    ("ns", "text"),
    [(5 * SECOND, "5s"), (1_500_000_000, "1500ms"), (3_600 * SECOND, "1h"), (7, "7ns"), (0, "0")],
)
def test_durations_are_written_in_the_largest_exact_unit(ns, text):
    assert format_duration(ns) == text


@given(st.integers(min_value=0, max_value=10**16))
def test_a_written_duration_reads_back_the_same(ns):
    assert parse_duration(format_duration(ns)) == ns


@pytest.mark.parametrize(
    ("text", "distance"),
    [
        ("2", PriceDistance(2, "ticks")),
        (2, PriceDistance(2, "ticks")),
        ("2ticks", PriceDistance(2, "ticks")),
        ("1tick", PriceDistance(1, "ticks")),
        ("3t", PriceDistance(3, "ticks")),
        ("5bp", PriceDistance(5, "bp")),
        ("0.5%", PriceDistance(0.5, "%")),
        ("0.05px", PriceDistance(0.05, "px")),
    ],
)
def test_distances_keep_their_unit_and_a_bare_number_is_ticks(text, distance):
    assert parse_distance(text) == distance


def test_a_distance_resolves_to_ticks_on_an_instrument():
    tick = 0.01
    assert PriceDistance(2, "ticks").resolve(tick) == (2, 0.0)
    assert PriceDistance(0.05, "px").resolve(tick) == pytest.approx((5.0, 0.0))
    assert PriceDistance(5, "bp").resolve(tick) == (0.0, pytest.approx(5e-4))
    assert PriceDistance(0.5, "%").resolve(tick) == (0.0, pytest.approx(5e-3))


@pytest.mark.parametrize("bad", ["2 apples", "ticks", "", "nan", True])
def test_an_unreadable_distance_is_named(bad):
    with pytest.raises(ConfigError, match="spread"):
        parse_distance(bad, "spread")


@pytest.mark.parametrize(
    ("text", "fee"), [("-0.2bp", -0.00002), ("0.5bps", 0.00005), ("0.02%", 0.0002), ("0.001", 0.001)]
)
def test_fees(text, fee):
    assert parse_fee(text) == pytest.approx(fee)


class Settings(BaseModel):
    interval: Duration = 0
    spread: Distance = PriceDistance(1)


def test_settings_hold_typed_values_and_write_them_back_as_text():
    s = Settings(interval="5000", spread=2)
    assert s.interval == 5 * SECOND and s.spread == PriceDistance(2, "ticks")
    dumped = s.model_dump(mode="json")
    assert dumped == {"interval": "5s", "spread": "2ticks"}
    assert Settings(**dumped) == s


def test_a_setting_error_names_the_field_once_and_the_value():
    with pytest.raises(ValidationError) as info:
        Settings(spread="-1tick")
    assert "spread" in str(info.value) and "-1tick" in str(info.value)
    with pytest.raises(ValidationError, match="cannot read 'soon'"):
        Settings(interval="soon")
