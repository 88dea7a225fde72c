"""The README's analysis numbers come from these functions: protect their arithmetic on hand-made curves."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from plot_results import first_crossing, summarise  # noqa: E402
from sratio_metric import metric  # noqa: E402


def curve(values, seconds_per_point=10.0, steps_per_point=1000):
    values = np.array(values, float)
    n = len(values)
    return (np.arange(1, n + 1) * steps_per_point, values, np.arange(1, n + 1) * seconds_per_point)


def test_first_crossing_is_the_first_point_at_or_above_threshold_float32_safe():
    steps, values, seconds = curve([0.1, 0.5, np.float32(0.9), 1.0])  # float32 0.9 is 0.89999998
    assert first_crossing(steps, values, seconds, 0.9) == (3000, 30.0)
    assert np.isnan(first_crossing(steps, values, seconds, 1.1)[0])


def test_summarise_takes_medians_over_the_seeds_that_reached_the_threshold():
    runs = [curve([0.95]), curve([0.0, 0.95, 0.7]), curve([0.0, 0.0, 0.2])]
    row = summarise({"x": runs}, 0.9)[0]
    assert (row["seeds"], row["reached"]) == (3, 2)
    assert row["steps"] == 1500 and row["minutes"] == pytest.approx(15.0 / 60)
    assert row["best"] == 0.95 and row["final"] == 0.7


def test_sratio_metric_is_final_success_times_one_minus_time_over_slowest():
    runs_by_d = {0.2: [curve([0.0, 0.95, 0.8])],         # 90% at 20 s / 2,000 steps, ends at 0.8
                 0.5: [curve([0.0, 0.0, 0.0, 0.92, 1.0])],  # the slowest: 40 s / 4,000 steps -> M = 0
                 0.0: [curve([0.0, 0.0])]}                  # never reaches 90% -> M = 0
    scores = metric(runs_by_d, 0.9)
    by_seconds, by_steps, final, seconds, steps = scores[0.2]
    assert by_seconds[0] == pytest.approx(0.8 * (1 - 20 / 40))
    assert by_steps[0] == pytest.approx(0.8 * (1 - 2000 / 4000))
    assert (final[0], seconds[0], steps[0]) == (0.8, 20.0, 2000)
    assert scores[0.5][0][0] == 0.0 and scores[0.0][0][0] == 0.0 and scores[0.0][1][0] == 0.0
