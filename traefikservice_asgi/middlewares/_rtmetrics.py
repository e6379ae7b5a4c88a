"""What a circuit breaker watches: oxy's ``memmetrics.RTMetrics`` (v2.1.0), the answers
of a rolling window, in nanoseconds of the wall clock as oxy reads ``time.Now()``.

- Counters (all answers, network errors = ``502``/``504``, one per status code) are
  oxy's ``RollingCounter``: 10 buckets of one second, indexed by the Unix second, each
  emptied when the clock has moved past it since the counter's last increment: a
  rolling 10 s window.
- Latencies go to oxy's ``RollingHDRHistogram``: 6 HDR histograms (1 µs to 1 h, two
  significant figures, hdrhistogram-go's buckets), the current one moving on at a
  record at least 10 s after the last move (one move per record, however long the gap),
  all of them merged for a quantile; ``LatencyAtQuantileMS`` is hdrhistogram-go's
  ``ValueAtQuantile`` (the highest value equivalent to the bucket that reaches the
  count) in whole milliseconds.

Written out by hand because the window, the buckets and the HDR rounding decide when a
breaker trips, and Traefik's are oxy's and hdrhistogram-go's to the unit.
"""

from __future__ import annotations

__all__ = ["HDRHistogram", "RTMetrics", "RollingCounter", "RollingHistogram"]

SECOND = 1_000_000_000

# hdrhistogram-go's New(1, 3_600_000_000, 2): unit magnitude 0, 256 sub-buckets.
_HALF_MAGNITUDE = 7
_SUB_BUCKETS = 256
_HALF = 128
_MASK = 255
_COUNTS = 26 * _HALF  # (bucketCount 25 + 1) * subBucketHalfCount


def _bucket_index(value: int) -> int:
    return (value | _MASK).bit_length() - (_HALF_MAGNITUDE + 1)


def _counts_index(value: int) -> int:
    bucket = _bucket_index(value)
    return ((bucket + 1) << _HALF_MAGNITUDE) + (value >> bucket) - _HALF


def _value_of_index(index: int) -> int:
    if index < _SUB_BUCKETS:
        return index
    bucket = index // _HALF - 1
    return (index - bucket * _HALF) << bucket


def _lowest_equivalent(value: int) -> int:
    bucket = _bucket_index(value)
    return (value >> bucket) << bucket


def _highest_equivalent(value: int) -> int:
    bucket = _bucket_index(value)
    sub = value >> bucket
    size = 1 << (bucket + (1 if sub >= _SUB_BUCKETS else 0))
    return _lowest_equivalent(value) + size - 1


class HDRHistogram:
    """hdrhistogram-go's ``Histogram`` as oxy configures it: counts by bucket index."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def record(self, value: int) -> None:
        """``RecordValue``: a value past the last bucket (over ~71 min) is dropped."""
        index = _counts_index(value)
        if 0 <= index < _COUNTS:
            self.counts[index] = self.counts.get(index, 0) + 1
            self.total += 1

    def merge(self, other: HDRHistogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total

    def reset(self) -> None:
        self.counts.clear()
        self.total = 0

    def value_at_quantile(self, q: float) -> int:
        """``ValueAtQuantile`` (``q`` a percentile: 50.0 is the median)."""
        q = min(q, 100.0)
        wanted = int(q / 100 * self.total + 0.5)
        value, seen = 0, 0
        for index in sorted(self.counts):
            if seen >= wanted:
                break
            seen += self.counts[index]
            value = _value_of_index(index)
        return _lowest_equivalent(value) if q == 0.0 else _highest_equivalent(value)


class RollingHistogram:
    """oxy's ``RollingHDRHistogram``: 6 histograms, moving on every 10 s of records."""

    __slots__ = ("buckets", "idx", "last_roll")

    PERIOD = 10 * SECOND

    def __init__(self) -> None:
        self.buckets = [HDRHistogram() for _ in range(6)]
        self.idx = 0
        self.last_roll: int | None = None  # Go's zero time: the first record moves on

    def record(self, value: int, now: int) -> None:
        if self.last_roll is None or now - self.last_roll >= self.PERIOD:
            self.idx = (self.idx + 1) % len(self.buckets)
            self.buckets[self.idx].reset()
            self.last_roll = now
        self.buckets[self.idx].record(value)

    def merged(self) -> HDRHistogram:
        out = HDRHistogram()
        for bucket in self.buckets:
            out.merge(bucket)
        return out

    def reset(self, now: int) -> None:
        self.idx = 0
        self.last_roll = now
        for bucket in self.buckets:
            bucket.reset()


class RollingCounter:
    """oxy's ``RollingCounter``: 10 one-second buckets by Unix second. Only the second of
    the last increment matters to oxy's cleanup (it compares truncated times), so that
    is what is kept: within one second nothing needs cleaning."""

    __slots__ = ("last_second", "values")

    RESOLUTION = SECOND

    def __init__(self) -> None:
        self.values = [0] * 10
        self.last_second: int | None = None  # Go's zero time: before any second

    def _cleanup(self, second: int) -> None:
        """Empty the buckets of the seconds since the last increment (at most all)."""
        last = self.last_second
        if last == second:
            return
        values = self.values
        for checkpoint in range(second, second - len(values), -1):
            if last is not None and checkpoint <= last:
                break
            values[checkpoint % len(values)] = 0

    def inc(self, now: int) -> None:
        second = now // self.RESOLUTION
        self._cleanup(second)
        self.values[second % len(self.values)] += 1
        self.last_second = second

    def count(self, now: int) -> int:
        self._cleanup(now // self.RESOLUTION)
        return sum(self.values)


class RTMetrics:
    """oxy's ``RTMetrics``: what ``NetworkErrorRatio``, ``ResponseCodeRatio`` and
    ``LatencyAtQuantileMS`` read."""

    __slots__ = ("histogram", "net_errors", "status_codes", "total")

    def __init__(self) -> None:
        self.total = RollingCounter()
        self.net_errors = RollingCounter()
        self.status_codes: dict[int, RollingCounter] = {}
        self.histogram = RollingHistogram()

    def record(self, status: int, latency_ns: int, now: int) -> None:
        self.total.inc(now)
        if status in (502, 504):
            self.net_errors.inc(now)
        counter = self.status_codes.get(status)
        if counter is None:
            counter = self.status_codes[status] = RollingCounter()
        counter.inc(now)
        self.histogram.record(latency_ns // 1000, now)

    def network_error_ratio(self, now: int) -> float:
        total = self.total.count(now)
        return self.net_errors.count(now) / total if total else 0.0

    def response_code_ratio(self, a0: int, a1: int, b0: int, b1: int, now: int) -> float:
        a = b = 0
        for code, counter in self.status_codes.items():
            count = counter.count(now)
            if a0 <= code < a1:
                a += count
            if b0 <= code < b1:
                b += count
        return a / b if b else 0.0

    def latency_at_quantile_ms(self, quantile: float) -> int:
        return self.histogram.merged().value_at_quantile(quantile) // 1000

    def reset(self, now: int) -> None:
        self.histogram.reset(now)
        self.total = RollingCounter()
        self.net_errors = RollingCounter()
        self.status_codes = {}
