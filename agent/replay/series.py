"""The time series a replay keeps for its plots: speed, pack power, SOC and cumulative energies.

Constant memory whatever the log's length: readings fall into time buckets of one width, at most
``max_points`` of them; when one more would be needed, neighbouring buckets merge and the width
doubles, so a ten-hour and a ten-day log both end with at most ``max_points`` points.

Energy is integrated by the agent's own :class:`agent.integration.Integrator` (the same trapezoid,
the same discharge/regen split at zero crossings, the same unbridged gaps and voltage age), one
instance over the whole replay, not a second integrator. Each increment is booked the way the
agent books it: while the vehicle says it is charging the segmenter puts the reading into a
charge session, whose energy in is what flowed in net of what flowed out
(:func:`agent.sealing.build_record`); otherwise discharge is energy out and charge is regen.
Readings outside any trip or charge (parked, awake) count too: the plot shows what the pack did,
which no record carries, so the curves may end a little above the records' sums. The interval
that ends at a reading is booked by the state after that reading, as the segmenter hands the
reading on; a segment's own integrator, born at its first reading, leaves out the interval
before it, so at a trip or charge that starts at full power the two differ by that one interval.
"""

import math
from dataclasses import dataclass

from agent.errors import ConfigError
from agent.integration import SECONDS_PER_HOUR, Integrator
from agent.readings import Quantity, Reading
from agent.segmentation import SegmenterSettings

INITIAL_BUCKET_WIDTH_S = 1.0
"""Finest resolution: one point per second of log (finer is more than a plot's pixels show)."""
WATTS_PER_KILOWATT = 1000.0
# Looked up once: add() runs for every reading of a replay.
_CHARGING, _SOC_PCT, _SPEED_KPH, _PACK_CURRENT_A = (
    Quantity.CHARGING,
    Quantity.SOC_PCT,
    Quantity.SPEED_KPH,
    Quantity.PACK_CURRENT_A,
)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """The replay over one bucket of time, as of its last reading.

    ``speed_kph`` and ``pack_power_kw`` are means over the bucket (a snapshot of one reading in a
    bucket minutes wide would be noise); ``soc_pct`` and the energies are the values at ``time_s``.
    """

    time_s: float
    """Unix seconds of the bucket's last reading."""
    speed_kph: float | None
    pack_power_kw: float | None
    """Voltage × current / 1000, positive while discharging; time-weighted over the integrated intervals."""
    soc_pct: float | None
    energy_out_wh: float
    """Cumulative since the start of the replay."""
    energy_regen_wh: float
    energy_in_wh: float
    """Cumulative energy charged into the pack (net of what it gave out meanwhile, as a charge record)."""


@dataclass(slots=True)
class _Bucket:
    """One bucket being filled: sums for the means, values as of its last reading for the rest."""

    index: int
    """Whole bucket widths from the first reading to this bucket's start."""
    end_s: float
    speed_sum_kph: float = 0.0
    speed_count: int = 0
    net_energy_wh: float = 0.0
    """Out minus regen/in over the bucket: with ``covered_s``, the time-weighted mean power."""
    covered_s: float = 0.0
    soc_pct: float | None = None
    energy_out_wh: float = 0.0
    energy_regen_wh: float = 0.0
    energy_in_wh: float = 0.0

    def absorb(self, later: "_Bucket") -> None:
        """Take the next bucket into this one (sums add up; values at the end are the later's)."""
        self.end_s = max(self.end_s, later.end_s)
        self.speed_sum_kph += later.speed_sum_kph
        self.speed_count += later.speed_count
        self.net_energy_wh += later.net_energy_wh
        self.covered_s += later.covered_s
        self.soc_pct = later.soc_pct
        self.energy_out_wh = later.energy_out_wh
        self.energy_regen_wh = later.energy_regen_wh
        self.energy_in_wh = later.energy_in_wh

    def point(self) -> SeriesPoint:
        power_kw = None
        if self.covered_s > 0:
            power_kw = self.net_energy_wh * SECONDS_PER_HOUR / self.covered_s / WATTS_PER_KILOWATT
        return SeriesPoint(
            time_s=self.end_s,
            speed_kph=self.speed_sum_kph / self.speed_count if self.speed_count else None,
            pack_power_kw=power_kw,
            soc_pct=self.soc_pct,
            energy_out_wh=self.energy_out_wh,
            energy_regen_wh=self.energy_regen_wh,
            energy_in_wh=self.energy_in_wh,
        )


class SeriesRecorder:
    """Keeps the replay's time series in at most ``max_points`` buckets. Not thread-safe.

    ``settings`` must be the segmenter's, so energy is integrated with the same gap and voltage-age
    limits as the records.
    """

    def __init__(self, max_points: int = 4000, *, settings: SegmenterSettings | None = None) -> None:
        if max_points < 1:
            raise ConfigError(f"a series needs room for at least one point, got max_points={max_points}")
        self.max_points = max_points
        self._settings = settings or SegmenterSettings()
        self.bucket_width_s = INITIAL_BUCKET_WIDTH_S
        self._buckets: list[_Bucket] = []
        self._origin_s = self._latest_s = 0.0
        self._integrator: Integrator | None = None
        self._charging = False
        self._soc_pct: float | None = None
        self._energy_out_wh = self._energy_regen_wh = self._energy_in_wh = 0.0

    def add(self, reading: Reading) -> None:
        """Take one decoded reading (in time order; one that goes back in time joins the latest bucket)."""
        # Called for every reading of a replay, millions of times: the common path stays short.
        time_s = reading.time_s
        if not math.isfinite(time_s):
            return  # no place on a time axis; the decoder never makes one from a real timestamp
        integrator = self._integrator
        if integrator is None:
            integrator = self._start(time_s)
        elif time_s > self._latest_s:
            if (time_s - self._origin_s) // self.bucket_width_s > self._buckets[-1].index:
                self._open_bucket(time_s)
            self._latest_s = time_s
        bucket = self._buckets[-1]
        values = reading.values
        charging = values.get(_CHARGING)
        if charging is not None:  # as the segmenter: without the state, or "not available", nothing changes
            self._charging = charging >= 0.5  # noqa: PLR2004 - state quantities are 0 or 1
        if _SOC_PCT in values:
            self._soc_pct = values[_SOC_PCT]  # "not available" makes the SOC unknown from now on
        speed_kph = values.get(_SPEED_KPH)
        if speed_kph is not None:
            bucket.speed_sum_kph += speed_kph
            bucket.speed_count += 1
        if _PACK_CURRENT_A not in values:
            # The integrator takes every reading, but only a current reading adds energy (current ×
            # the latest voltage): for the others there is nothing to book.
            integrator.add(reading)
            return
        out_before, regen_before, covered_before = (
            integrator.energy_out_wh,
            integrator.energy_regen_wh,
            integrator.covered_s,
        )
        integrator.add(reading)
        out_wh = integrator.energy_out_wh - out_before
        regen_wh = integrator.energy_regen_wh - regen_before
        bucket.net_energy_wh += out_wh - regen_wh
        bucket.covered_s += integrator.covered_s - covered_before
        if self._charging:
            # The segmenter puts this reading into a charge session; its record's energy in is
            # regen-sign energy net of what the pack gave out meanwhile (agent.sealing.build_record).
            self._energy_in_wh += regen_wh - out_wh
        else:
            self._energy_out_wh += out_wh
            self._energy_regen_wh += regen_wh

    def points(self) -> list[SeriesPoint]:
        """One point per bucket, in time order (at most ``max_points``)."""
        if self._buckets:
            self._close(self._buckets[-1])
        return [bucket.point() for bucket in self._buckets]

    def _start(self, time_s: float) -> Integrator:
        self._origin_s = self._latest_s = time_s
        self._buckets.append(_Bucket(index=0, end_s=time_s))
        self._integrator = Integrator(
            time_s, max_gap_s=self._settings.max_gap_s, max_voltage_age_s=self._settings.max_voltage_age_s
        )
        return self._integrator

    def _close(self, bucket: _Bucket) -> None:
        """Write the values as of the bucket's last reading, which are the replay's now.

        Only the last bucket is ever open, and only until the next opens or points are taken:
        writing its end values then rather than after every reading keeps :meth:`add` short.
        """
        bucket.end_s = self._latest_s
        bucket.soc_pct = self._soc_pct
        bucket.energy_out_wh = self._energy_out_wh
        bucket.energy_regen_wh = self._energy_regen_wh
        bucket.energy_in_wh = self._energy_in_wh

    def _open_bucket(self, time_s: float) -> None:
        buckets = self._buckets
        self._close(buckets[-1])
        buckets.append(_Bucket(index=int((time_s - self._origin_s) // self.bucket_width_s), end_s=time_s))
        if len(buckets) > self.max_points:
            self._coarsen()

    def _coarsen(self) -> None:
        """Double the width and merge the buckets that now share one, until few enough remain.

        Buckets exist only where readings came, so one doubling may merge none (every other
        bucket empty): keep doubling. Indexes are never negative, so this ends.
        """
        buckets = self._buckets
        while len(buckets) > self.max_points:
            self.bucket_width_s *= 2
            merged: list[_Bucket] = []
            for bucket in buckets:
                bucket.index //= 2
                if merged and merged[-1].index == bucket.index:
                    merged[-1].absorb(bucket)
                else:
                    merged.append(bucket)
            buckets = merged
        self._buckets = buckets
