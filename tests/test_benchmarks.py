"""The analysis behind the reports: protect its arithmetic and statistics on hand-made runs (no training)."""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import trim_mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from delta_s_table import delta_s_table, mean_delta_s  # noqa: E402
from iteration_cost import cost_table, iteration_seconds, saving_table  # noqa: E402
import plot_results  # noqa: E402
from plot_results import (best_and_final_table, curve_iqm_band, iqm, iqm_ci, markdown_table,  # noqa: E402
                          paired_table, separated, summarise)
from run_logs import Curve, Run, first_crossing, reduced  # noqa: E402
from sratio_metric import band_verdict, metric  # noqa: E402

TAG = "charts/success_rate"


def curve(values, seconds_per_point=10.0, steps_per_point=1000) -> Curve:
    n = len(values)
    return Curve(np.arange(1, n + 1) * steps_per_point, np.array(values, float),
                 np.arange(1, n + 1) * seconds_per_point)


def run(values, method="m", condition="c", seed=1, flags=(), **scalars) -> Run:
    return Run(run_id=f"{method}-{condition}-s{seed}", method=method, condition=condition, seed=seed,
               script="ppo_her", flags=tuple(flags), scalars={TAG: curve(values), **scalars})


def test_first_crossing_is_the_first_point_at_or_above_threshold_float32_safe():
    c = curve([0.1, 0.5, np.float32(0.9), 1.0])  # float32 0.9 is 0.89999998
    assert first_crossing(c, 0.9) == (3000, 30.0)
    assert np.isnan(first_crossing(c, 1.1)[0])


def test_iqm_is_the_mean_of_the_middle_half_and_ignores_an_outlier():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # (3 + 4 + 5 + 6) / 4


def test_iqm_interval_is_the_percentile_bootstrap_and_reproducible():
    """The interval matches a hand-rolled 95% percentile bootstrap of the IQM, and is the same on every call."""
    x = np.array([1.0, 2, 3, 4, 5, 6, 7, 100])
    point, low, high = iqm_ci(x)
    rng = np.random.default_rng(123)
    resampled = x[rng.integers(0, len(x), (20_000, len(x)))]
    expected = np.percentile(trim_mean(resampled, 0.25, axis=1), [2.5, 97.5])
    assert point == pytest.approx(4.5) and low <= point <= high
    assert (low, high) == pytest.approx(tuple(expected), abs=0.3)
    assert iqm_ci(x) == (point, low, high)


def test_interval_of_constant_data_is_a_point_and_of_one_seed_undefined():
    assert iqm_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7, 0.7))
    point, low, high = iqm_ci([0.7])
    assert point == pytest.approx(0.7) and np.isnan(low) and np.isnan(high)


def test_pooled_interval_resamples_within_each_condition():
    """Stratified: resampling seeds within each condition keeps three 0s and three 10s in every resample, so the
    pooled IQM cannot move; a bootstrap over the pooled values would have a wide interval."""
    assert iqm_ci([0, 0, 0], [10, 10, 10]) == pytest.approx((5.0, 5.0, 5.0))
    point, low, high = iqm_ci([0, 0, 0, 10, 10, 10])
    assert point == pytest.approx(5.0) and high - low > 4


def test_summary_counts_runs_that_never_reach_the_threshold_at_the_budget():
    """Steps to 90%: 1,000 / 2,000 / 3,000 and one run that never gets there (counted at the 10,000 budget): IQM
    2,500 with 3 of 4 reached; its minutes are the minutes it ran. A crossing after the budget does not count."""
    runs = [run([0.95], seed=1), run([0.0, 0.95], seed=2), run([0.0, 0.0, 0.9, 0.8], seed=3),
            run([0.0] * 6 + [0.2], seed=4)]
    (row,) = summarise(runs, TAG, 0.9, budget=10_000)
    assert (row["seeds"], row["reached"]) == (4, 3)
    assert row["steps"][0] == pytest.approx(2500)
    assert row["minutes"][0] == pytest.approx(np.mean([20, 30]) / 60)  # sorted 10, 20, 30, 70 s: middle two
    assert row["final"][0] == pytest.approx(np.mean([0.8, 0.95]))  # sorted 0.2, 0.8, 0.95, 0.95
    (cut,) = summarise(runs, TAG, 0.9, budget=2_000)
    assert cut["reached"] == 2 and cut["steps"][0] == pytest.approx(2000)  # 1,000, 2,000, 2,000, 2,000


def test_best_and_final_says_how_far_a_run_ends_below_its_peak_within_the_budget():
    """Runs that peak at 1.0 (step 2,000) and end at 0.6, and one that holds 0.9: best, where, final and the drop,
    each the mean of the 3 seeds (an IQM of 3 trims nothing); the third run's 0.1 after the 4,000-step budget is
    left out."""
    runs = [run([0.5, 1.0, 0.8, 0.6], seed=1), run([0.9, 0.9, 0.9, 0.9], seed=2),
            run([0.2, 1.0, 0.7, 0.6, 0.1], seed=3)]
    row = best_and_final_table(runs, TAG, budget=4000).splitlines()[-1]
    assert row.startswith("| c | m | 3 | 0.97 [0.90, 1.00] | 1,667 [1,000, 2,000] | 0.70 [0.60, 0.90] | 0.27 ["), row


def test_summary_adds_a_pooled_row_per_method_over_conditions():
    runs = [run([0.95], condition=c, seed=s) for c in ("a", "b") for s in (1, 2)]
    rows = summarise(runs, TAG, 0.9, budget=5000)
    assert [(r["condition"], r["seeds"]) for r in rows] == [("a", 2), ("b", 2), ("all 2 conditions", 4)]
    assert "| all 2 conditions | m | 4 | 4/4 | 1,000 [1,000, 1,000] |" in markdown_table(rows, 0.9, TAG)


def test_curve_band_is_nan_where_a_seed_has_no_data():
    curves = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, np.nan]])
    middle, low, high = curve_iqm_band(curves)
    assert middle[:2] == pytest.approx([0.0, 0.5]) and low[:2] == pytest.approx([0.0, 0.5])
    assert np.isnan(middle[2]) and np.isnan(high[2])


def test_more_than_four_conditions_also_get_a_grid_with_a_panel_each_in_rows_of_six(tmp_path, monkeypatch):
    """Seven conditions: grid.png comes first, one 1800 x 600 figure with a panel per condition in the given order,
    six to a row (the papers' 12 prey x spawn conditions come out 2 x 6), beside the per-condition PNGs; four
    conditions: only the per-condition PNGs."""
    from matplotlib.image import imread

    panels = {}  # file name -> (title, row) of each panel
    save = plot_results.save_figure

    def recording_save(fig, path):
        panels[Path(path).name] = [(ax.get_title(), ax.get_subplotspec().rowspan.start) for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(plot_results, "save_figure", recording_save)
    conditions = [f"c{i}" for i in range(7)]
    runs = [run([0.2, 0.6, 1.0], condition=c, seed=s) for c in reversed(conditions) for s in (1, 2)]
    paths = plot_results.plot_curves(runs, TAG, 3000, tmp_path, conditions=conditions)
    assert [Path(p).name for p in paths] == ["grid.png", *[f"{c}.png" for c in conditions]]
    assert panels["grid.png"] == [(c, i // 6) for i, c in enumerate(conditions)]
    assert imread(tmp_path / "grid.png").shape[:2] == (600, 1800)
    assert panels["c0.png"] == [("c0: IQM and 95% CI", 0)]
    few = tmp_path / "few"
    few.mkdir()
    paths = plot_results.plot_curves(runs, TAG, 3000, few, conditions=conditions[:4])
    assert [Path(p).name for p in paths] == [f"{c}.png" for c in conditions[:4]] and not (few / "grid.png").exists()


def test_sratio_metric_is_final_success_times_one_minus_time_over_slowest():
    curves_by_d = {0.2: [curve([0.0, 0.95, 0.8])],         # 90% at 20 s / 2,000 steps, ends at 0.8
                   0.5: [curve([0.0, 0.0, 0.0, 0.92, 1.0])],  # the slowest: 40 s / 4,000 steps -> M = 0
                   0.0: [curve([0.0, 0.0])]}                  # never reaches 90% -> M = 0
    scores = metric(curves_by_d, 0.9)
    by_seconds, by_steps, final, seconds, steps = scores[0.2]
    assert by_seconds[0] == pytest.approx(0.8 * (1 - 20 / 40))
    assert by_steps[0] == pytest.approx(0.8 * (1 - 2000 / 4000))
    assert (final[0], seconds[0], steps[0]) == (0.8, 20.0, 2000)
    assert scores[0.5][0][0] == 0.0 and scores[0.0][0][0] == 0.0 and scores[0.0][1][0] == 0.0


def test_band_verdict_holds_only_when_the_band_leads_and_is_separated_from_both_ends_at_five_seeds():
    """"0.5-0.7 is best" per condition: the band's best separated above every other D at 5 seeds holds, above D = 0
    and 1 only holds against them; fewer seeds suggest; a D outside the band separated above it refutes it."""
    stats = {0.0: (0.0, 0.0, 0.0), 0.5: (0.8, 0.7, 0.9), 0.6: (0.85, 0.8, 0.9), 1.0: (0.5, 0.4, 0.6)}
    assert band_verdict(stats, seeds=5) == ("holds", 0.6)
    assert band_verdict(stats, seeds=4) == ("suggests", 0.6)
    assert band_verdict({**stats, 0.4: (0.8, 0.75, 0.85)}, seeds=5) == ("holds against 0 and 1", 0.6)
    assert band_verdict({**stats, 1.0: (0.82, 0.75, 0.88)}, seeds=5) == ("suggests", 0.6)  # D = 1 overlaps
    assert band_verdict({**stats, 0.8: (0.9, 0.85, 0.95)}, seeds=5) == ("cannot tell", 0.6)  # best outside, overlaps
    assert band_verdict({**stats, 0.8: (0.97, 0.95, 0.99)}, seeds=5) == ("does not hold", 0.6)


def test_paired_table_counts_the_conditions_where_each_method_is_separated_ahead():
    """A reaches 90% sooner than B on c1 (separated), they tie on c2; B ends higher on c1."""
    runs = [run([0, 0.95, 0.95], "a", "c1", seed) for seed in (1, 2, 3)]
    runs += [run([0, 0, 0.91, 0.91, 1.0], "b", "c1", seed) for seed in (1, 2, 3)]
    runs += [run([0, 0.95], m, "c2", seed) for m in ("a", "b") for seed in (1, 2, 3)]
    rows = summarise(runs, TAG, 0.9, budget=5000)
    steps, final = paired_table(rows, [("a", "b")], 0.9).splitlines()[2:]
    assert steps.startswith("| a | b | env steps to 90% | 1 (c1) | 0 | 1 |")
    assert final.startswith("| a | b | final value | 0 | 1 (c1) | 1 |")
    summed = paired_table(rows, [("a", "b"), ("b", "a")], 0.9, summed=("A", "B")).splitlines()[-2:]
    assert summed == ["| A | B | env steps to 90% | 1 | 1 | 2 | - | - |", "| A | B | final value | 1 | 1 | 2 | - | - |"]
    assert separated((1, 0.9, 1.1), (2, 1.5, 2.5)) == "below" and separated((1, 0.9, 1.6), (2, 1.5, 2.5)) == "overlap"


def test_saving_table_compares_seconds_per_run_and_per_iteration_of_two_methods():
    """A's iterations take 1 s, B's 2 s (the first, which also made the envs, is left out of the per-iteration
    column): A / B is 0.5 per iteration, and the whole runs' ratio comes from their last tick."""
    def timed(method, step_seconds, seed):
        ticks = Curve(np.arange(1, 5) * 2048, np.ones(4), 3.0 + step_seconds * np.arange(4) + 0.01 * seed)
        return run([0.5], method, **{"charts/SPS": ticks})

    runs = [timed("a", 1.0, seed) for seed in (1, 2, 3)] + [timed("b", 2.0, seed) for seed in (1, 2, 3)]
    row = saving_table(runs, [("a", "b")]).splitlines()[2]
    assert row.startswith("| a | b | c | 6.02 [6.01, 6.03] | 9.02 [9.01, 9.03] | 0.67 | yes | 1.00 [1.00, 1.00] "
                          "| 2.00 [2.00, 2.00] | 0.50 | yes |")


def test_iteration_cost_comes_from_wall_time_differences_split_at_the_her_switch():
    """Iterations end at 5, 7, 9, 10, 11 s: the first (which also made the envs) counts only in the whole run;
    her/enabled is on for the next two (2 s each) and off for the last two (1 s each)."""
    ticks = Curve(np.array([1, 2, 3, 4, 5]) * 2048, np.ones(5), np.array([5.0, 7, 9, 10, 11]))
    enabled = Curve(ticks.steps, np.array([1.0, 1, 1, 0, 0]), ticks.seconds)
    switching = run([0.5], method="ppo_her_2_ppo", **{"charts/SPS": ticks, "her/enabled": enabled})
    seconds, her_on, total = iteration_seconds(switching)
    assert seconds.tolist() == [5, 2, 2, 1, 1] and her_on.tolist() == [True, True, True, False, False]
    assert total == 11
    plain = run([0.5], method="ppo", flags=("--no-her",), **{"charts/SPS": ticks})
    assert not iteration_seconds(plain)[1].any()
    table = cost_table([switching, plain])
    assert "| c | ppo_her_2_ppo | 2.00 | 1.00 | 11.0 |" in table and "| c | ppo | - | 1.50 | 11.0 |" in table


def test_delta_s_table_averages_each_run_over_its_epochs_up_to_the_budget_while_learning_and_once_succeeded():
    """Mean delta_S per run over its epochs up to the budget, over only the epochs whose test success is in
    [0.1, 0.9] (seed 1: its second epoch; seed 2 has none), and from the first epoch whose test success reaches 0.9
    on (seed 2: its second and third epochs, though the third falls back; seed 1 never gets there); the table's IQM over
    seeds of each, and the paper's Table 1 value of the method and task."""
    def sher(values, test_success, seed):
        r = run([0.5], method="sher", seed=seed, **{"stability/delta_s": curve(values),
                                                    "eval/success_rate": curve(test_success)})
        r.env_id = "FetchPush-v4"
        return r

    runs = [sher([0.1, 0.3, 0.2, 9.0], [0.0, 0.5, 0.05, 0.5], 1), sher([0.2, 0.2, 0.1, 9.0], [0.05, 0.95, 0.05, 1], 2)]
    seed_1, seed_2 = mean_delta_s(runs, budget=3000)["sher", "FPush"]  # 9.0: after the budget
    assert seed_1[:3] == (pytest.approx(0.2), pytest.approx(0.3), 1) and np.isnan(seed_1[3])
    assert seed_2[0] == pytest.approx(0.5 / 3) and np.isnan(seed_2[1]) and seed_2[2] == 0
    assert seed_2[3] == pytest.approx(0.15)
    row = "| FPush | sher | 2 | 0.183 [0.167, 0.200] | 0.300 (1) | 0.5 | 0.150 (1) | 0.014 |"
    assert row in delta_s_table(runs, budget=3000)


def test_an_analysis_command_pools_the_runs_of_several_folders_and_names_an_empty_one(monkeypatch, capsys):
    import run_logs

    found = {"a": [run([0.5], method="her_ddpg")], "b": [run([0.5], method="sher")], "empty": []}
    monkeypatch.setattr(run_logs, "load_runs", lambda folder: found[folder])
    table = lambda runs, budget: sorted(r.method for r in runs)  # noqa: E731
    monkeypatch.setattr(sys, "argv", ["tool.py", "a", "b"])
    run_logs.table_from_command_line("tool", "a", table)
    assert capsys.readouterr().out.strip() == "['her_ddpg', 'sher']"
    monkeypatch.setattr(sys, "argv", ["tool.py", "a", "empty"])
    with pytest.raises(SystemExit, match="error: no finished runs under empty"):
        run_logs.table_from_command_line("tool", "a", table)


def test_a_record_reduces_per_episode_scalars_to_their_mean_per_iteration_and_keeps_the_others():
    """Per-episode points (more than charts/SPS has) become one mean per iteration, at the iteration's step and
    seconds; points after the last iteration keep their own last step; once-per-iteration scalars stay as they are."""
    tick = Curve(np.array([100, 200]), np.array([5.0, 6.0]), np.array([1.0, 2.0]))
    episodes = Curve(np.array([30, 60, 100, 150, 250]), np.array([1.0, 2.0, 3.0, 10.0, 7.0]),
                     np.array([0.3, 0.6, 1.0, 1.5, 2.5]))
    curves, names = reduced({"charts/SPS": tick, "charts/episodic_return": episodes, "charts/success_rate": tick})
    assert names == ["charts/episodic_return"] and curves["charts/success_rate"] is tick
    out = curves["charts/episodic_return"]
    assert out.steps.tolist() == [100, 200, 250] and out.values.tolist() == [2.0, 10.0, 7.0]
    assert out.seconds.tolist() == [1.0, 2.0, 2.5]
