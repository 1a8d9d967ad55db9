from datetime import timedelta

import pytest

from ibkr_mcp.simulator.market import MarketDataRequestError, parse_bar_size, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60 S", timedelta(seconds=60)),
        ("30 D", timedelta(days=30)),
        ("2 W", timedelta(days=14)),
        ("1 M", timedelta(days=30)),
        ("1 Y", timedelta(days=365)),
        (" 3600 S ", timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "60", "S", "60S", "0 D", "-1 D", "1 d", "1 H", "1.5 D", "x D"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(MarketDataRequestError) as info:
        parse_duration(text)
    assert info.value.code == 321
    assert f"'{text}'" in info.value.message
    assert info.value.message.startswith("Error validating request")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1 secs", 1), ("5 secs", 5), ("10 secs", 10), ("15 secs", 15), ("30 secs", 30),
        ("1 min", 60), ("2 mins", 120), ("3 mins", 180), ("5 mins", 300), ("10 mins", 600),
        ("15 mins", 900), ("20 mins", 1200), ("30 mins", 1800), ("1 hour", 3600),
        ("2 hours", 7200), ("3 hours", 10800), ("4 hours", 14400), ("8 hours", 28800),
        ("1 day", 86400), ("1 week", 7 * 86400), ("1 month", 30 * 86400),
        ("1W", 7 * 86400), ("1M", 30 * 86400), ("1  MIN", 60),
    ],
)  # fmt: skip
def test_parse_bar_size(text: str, seconds: int) -> None:
    assert parse_bar_size(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1 minute", "7 mins", "1 hours", "2 days", "60 S", "1"])
def test_parse_bar_size_rejects_with_legal_list(text: str) -> None:
    with pytest.raises(MarketDataRequestError) as info:
        parse_bar_size(text)
    assert info.value.code == 321
    assert f"'{text}'" in info.value.message
    assert "Legal ones are: 1 secs, 5 secs" in info.value.message
    assert str(info.value).startswith("321: ")
