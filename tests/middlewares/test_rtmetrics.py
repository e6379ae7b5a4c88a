"""oxy's rolling window: 10 one-second buckets by Unix second, and the HDR latency
histogram's buckets and quantiles as hdrhistogram-go computes them."""

from __future__ import annotations

from traefikservice_asgi.middlewares._rtmetrics import (
    SECOND,
    HDRHistogram,
    RollingCounter,
    RollingHistogram,
    RTMetrics,
)

MS = 1_000_000


def test_a_count_stays_in_the_window_until_its_unix_second_is_ten_seconds_old() -> None:
    counter = RollingCounter()
    counter.inc(100 * SECOND + 500 * MS)
    assert counter.count(109 * SECOND + 999 * MS) == 1
    assert counter.count(110 * SECOND) == 0  # its bucket is the current second's again


def test_counts_of_several_seconds_leave_the_window_one_second_at_a_time() -> None:
    counter = RollingCounter()
    for second in (100, 100, 103, 105):
        counter.inc(second * SECOND)
    assert counter.count(105 * SECOND) == 4
    assert counter.count(110 * SECOND) == 2  # second 100 gone
    assert counter.count(113 * SECOND) == 1  # second 103 gone
    assert counter.count(200 * SECOND) == 0


def test_hdr_values_fall_in_buckets_of_two_significant_figures() -> None:
    h = HDRHistogram()
    h.record(127)
    assert h.value_at_quantile(50.0) == 127  # exact below 256
    h.reset()
    h.record(200_000)  # bucket 10: [199680, 200704)
    assert h.value_at_quantile(50.0) == 200_703
    # A quantile whose count rounds to 0 (0.01 * 1 + 0.5): Go's loop never starts, 0.
    assert h.value_at_quantile(1.0) == 0
    assert h.value_at_quantile(0.0) == 0
    h.reset()
    h.record(100_500)  # [100352, 100864): 100 ms, not above 100
    assert h.value_at_quantile(99.0) // 1000 == 100


def test_quantile_counts_round_half_up_as_go_does() -> None:
    h = HDRHistogram()
    for value in (10, 20, 30, 40):
        h.record(value)
    assert [h.value_at_quantile(q) for q in (25.0, 37.5, 50.0, 62.5, 100.0, 150.0)] == [
        10, 20, 20, 30, 40, 40,
    ]  # fmt: skip
    assert HDRHistogram().value_at_quantile(50.0) == 0


def test_the_rolling_histogram_moves_on_once_per_record_after_ten_seconds() -> None:
    rolling = RollingHistogram()
    rolling.record(1000, 0)
    assert rolling.idx == 1
    rolling.record(2000, 9 * SECOND)
    assert rolling.idx == 1 and rolling.merged().total == 2
    for i in range(1, 7):
        rolling.record(3000, i * 11 * SECOND)
    assert rolling.merged().total == 6  # six histograms: the first records are gone
    assert rolling.merged().value_at_quantile(20.0) // 1000 == 3


def test_ratios_of_the_window() -> None:
    metrics = RTMetrics()
    now = 50 * SECOND
    for status in (200, 200, 500, 502, 504, 404):
        metrics.record(status, 1 * MS, now)
    assert metrics.network_error_ratio(now) == 2 / 6
    assert metrics.response_code_ratio(500, 600, 0, 600, now) == 3 / 6
    assert metrics.response_code_ratio(500, 600, 600, 700, now) == 0.0  # nothing to divide
    assert metrics.latency_at_quantile_ms(50.0) == 1
    metrics.reset(now)
    assert metrics.network_error_ratio(now) == 0.0
    assert metrics.latency_at_quantile_ms(50.0) == 0
