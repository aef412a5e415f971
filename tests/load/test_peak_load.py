"""The peak-hour load of bench/peak_hour.py for two minutes, at 10x the peak hour (studies of
realistic instance counts, smaller images): every instance is acknowledged and lands in exactly
one job, every job finishes and its result reaches the PACS, exactly one export each."""

from __future__ import annotations

from peak_load.run import run_peak

from tests.load.conftest import SCALE, assert_nothing_lost


def test_two_minutes_at_ten_times_the_peak_hour_lose_nothing(tmp_path):
    result = run_peak(tmp_path, multiplier=10, duration=120, scale=SCALE, keep_payloads=True, group_timeout=2)
    assert_nothing_lost(result)
    assert sum(len(r.jobs) for r in result.records) == len(result.records)    # one job per study
