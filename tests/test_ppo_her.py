"""algorithms/ppo_her.py: relabelling, GAE of copies, recomputed log-probs/values, a short learning run, flags."""
import numpy as np
import pytest
import torch

from conftest import (assert_one_line_error, assert_one_line_error_in_process, assert_resume_is_identical,
                      interrupt_script, load_checkpoint, load_script, only_run, read_scalars, run_in_process,
                      run_script)

ppo_her = load_script("ppo_her")
RADIUS = 1.0


@pytest.fixture(scope="module")
def env():
    import gymnasium as gym

    return gym.make("PredatorPrey-v0", radius=RADIUS).unwrapped


def hand_made_rollout():
    """Two envs x 6 steps, env-major: env 0 has a finished episode (steps 0-3) and an unfinished one (4-5);
    env 1 one unfinished fragment. The predator moves 0.5 along x per step from x = 0 (env 0) or x = 5 (env 1)."""
    x = np.concatenate([0.5 * np.arange(1, 5), 0.5 * np.arange(1, 3), 5 + 0.5 * np.arange(1, 7)])
    next_achieved = np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1).astype(np.float32)
    fragment_end = np.zeros(12, bool)
    fragment_end[[3, 5, 11]] = True
    return dict(next_achieved_goal=next_achieved,
                episode_steps=np.array([1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 5, 6]), fragment_end=fragment_end)


def relabel(env, strategy="final", k=1, seed=0):
    return ppo_her.relabel(hand_made_rollout(), strategy, k, env.compute_reward, np.random.default_rng(seed),
                           terminal_rewards=(1.0, -1.0))


def test_final_goal_is_post_action_position_of_last_step(env):
    """`final` aims at the position after the fragment's last action, unfinished fragments included."""
    copies = relabel(env)
    rollout = hand_made_rollout()
    for end in (3, 5, 11):
        start = 0 if end == 3 else (4 if end == 5 else 6)
        members = (copies["index"] >= start) & (copies["index"] <= end)
        assert members.any(), f"fragment ending at {end} was not relabelled"
        assert np.all(copies["goal"][members] == rollout["next_achieved_goal"][end])


def test_rewards_equal_compute_reward_and_copy_ends_at_first_success(env):
    """Relabelled rewards are the env's compute_reward; a copy stops at its first hindsight capture (+1, terminal)."""
    copies = relabel(env)
    rollout = hand_made_rollout()
    expected = env.compute_reward(rollout["next_achieved_goal"][copies["index"]], copies["goal"],
                                  {"episode_steps": rollout["episode_steps"][copies["index"]]})
    np.testing.assert_array_equal(copies["reward"], expected)
    # fragment 0: goal x = 2.0, radius 1 -> first capture at x = 1.0 (step 1); steps 2, 3 are dropped
    fragment0 = copies["index"][copies["index"] <= 3]
    np.testing.assert_array_equal(fragment0, [0, 1])
    assert copies["reward"][1] == 1 and copies["terminal"][1] and copies["copy_end"][1]
    assert not copies["terminal"][0] and copies["reward"][0] == 0
    # every copy ends exactly once, with a success
    assert copies["copy_end"].sum() == 3 and np.all(copies["reward"][copies["copy_end"]] == 1)


@pytest.mark.parametrize("strategy", ["episode", "future"])
def test_episode_and_future_goals_come_from_own_fragment(env, strategy):
    """`episode`/`future` goals are positions reached inside the same fragment (future: at or after the copy's start)."""
    rollout = hand_made_rollout()
    bounds = {3: (0, 3), 5: (4, 5), 11: (6, 11)}
    for seed in range(20):
        copies = relabel(env, strategy, k=3, seed=seed)
        for copy in np.split(np.arange(len(copies["index"])), np.flatnonzero(copies["copy_end"])[:-1] + 1):
            first = copies["index"][copy[0]]
            start, stop = next(b for b in bounds.values() if b[0] <= first <= b[1])
            assert np.all(copies["index"][copy] <= stop), "a copy ran into the next fragment"
            # the goal is a position reached inside this fragment, and for `future` at or after the copy's start
            earliest = first if strategy == "future" else start
            assert (rollout["next_achieved_goal"][earliest : stop + 1] == copies["goal"][copy[0]]).all(1).any()


def test_k_copies_per_fragment(env):
    """--her-k k gives k copies of every fragment."""
    assert relabel(env, "episode", k=4)["copy_end"].sum() == 4 * 3


def test_gae_of_copy_treats_last_step_as_terminal():
    """The last step of a relabelled copy does not bootstrap: its advantage is r - V, whatever V(next) is."""
    advantages = ppo_her.compute_gae(
        rewards=np.array([0.0, 1.0, 0.0, 1.0]), values=np.array([0.2, 0.5, 0.1, 0.3]),
        next_values=np.array([0.5, 100.0, 0.3, 100.0]), terminals=np.array([0, 1, 0, 1.0]),
        sequence_ends=np.array([0, 1, 0, 1], bool), gamma=0.99, lam=0.95)
    assert advantages[1] == pytest.approx(0.5) and advantages[3] == pytest.approx(0.7)
    delta0 = 0.0 + 0.99 * 0.5 - 0.2
    assert advantages[0] == pytest.approx(delta0 + 0.99 * 0.95 * 0.5)


def test_logprobs_and_values_are_recomputed_under_new_goal(env):
    """Unchanged goal -> identical log-probs and values; a new goal -> different ones."""
    torch.manual_seed(0)
    agent = ppo_her.Agent(env.observation_space, 3, 64)
    obs = np.random.default_rng(0).uniform(-5, 5, (6, 9)).astype(np.float32)
    actions = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(torch.from_numpy(obs), torch.from_numpy(actions))
    copies = dict(index=np.arange(6), goal=obs[:, -3:].copy(), reward=np.zeros(6, np.float32),
                  terminal=np.eye(6)[5], copy_end=np.eye(6, dtype=bool)[5])
    same = ppo_her.relabelled_batch(agent, obs, np.roll(obs, -1, 0), actions, copies, 3, ppo_her.Args(), "cpu")
    np.testing.assert_allclose(same["logprobs"], logprobs.numpy())
    np.testing.assert_allclose(same["values"], values.flatten().numpy())
    np.testing.assert_allclose(same["returns"], same["advantages"] + same["values"])
    copies["goal"] = copies["goal"] + 3.0
    moved = ppo_her.relabelled_batch(agent, obs, np.roll(obs, -1, 0), actions, copies, 3, ppo_her.Args(), "cpu")
    assert not np.allclose(moved["values"], same["values"])
    assert np.all(moved["obs"][:, -3:] == copies["goal"])


def update_on_random_batch(script, env, logprob_shift, **flags):
    """One ppo_update of a fresh agent on 64 random samples whose stored log-probs are the agent's current ones plus
    logprob_shift; returns its losses and whether any weight moved."""
    module = load_script(script)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    agent = module.Agent(env.observation_space, 3, 64)
    obs, actions = rng.uniform(-5, 5, (64, 9)).astype(np.float32), rng.standard_normal((64, 3)).astype(np.float32)
    with torch.no_grad():
        logprobs = agent.get_action_and_value(torch.from_numpy(obs), torch.from_numpy(actions))[1].numpy()
    advantages, returns = rng.standard_normal((2, 64)).astype(np.float32)
    batch = dict(obs=obs, actions=actions, logprobs=logprobs + logprob_shift, advantages=advantages, returns=returns,
                 values=np.zeros(64, np.float32))
    start = [p.detach().clone() for p in agent.parameters()]
    losses = module.ppo_update(agent, torch.optim.Adam(agent.parameters(), lr=1e-3, eps=1e-5), batch,
                               module.Args(minibatch_size=16, **flags), "cpu")
    return losses, not all(torch.equal(p, q) for p, q in zip(agent.parameters(), start))


@pytest.mark.parametrize("script", ["ppo_her", "meher", "ppo_her_2_ppo"])
def test_an_overflowing_ratio_stops_the_update_before_it_reaches_the_weights(env, script):
    """Stored log-probs far below the current ones (actions deep in the policy's tail) overflow the PPO ratio to inf:
    the update stops at that minibatch with every weight unchanged, instead of stepping on NaN."""
    losses, moved = update_on_random_batch(script, env, logprob_shift=-1e4)
    assert losses["approx_kl"] == float("inf") and not moved


@pytest.mark.parametrize("script", ["ppo_her", "meher", "ppo_her_2_ppo"])
def test_kl_stop_before_step_skips_the_step_that_the_default_takes(env, script):
    """Stored log-probs 1 below the current ones (approximate KL e - 2 = 0.72 from the first minibatch): the default
    takes that minibatch's step and stops; --kl-stop-before-step (stable-baselines3's rule) stops before it."""
    assert update_on_random_batch(script, env, logprob_shift=-1.0)[1]
    assert not update_on_random_batch(script, env, logprob_shift=-1.0, kl_stop_before_step=True)[1]


def test_short_run_learns_static_prey(tmp_path):
    """Static prey, apart spawn, seed 1, the fast configuration (half the time of the paper defaults): PPO-HER reaches
    >= 0.9 success within 30,000 env steps (it does at 20,480)."""
    out = run_script("ppo_her", tmp_path, "--prey", "static", "--spawn", "apart", "--hidden-size", "64", "--num-envs",
                     "32", "--num-steps", "64", "--minibatch-size", "256", "--total-timesteps", "30000",
                     "--stop-at-success", "0.9")
    assert out.returncode == 0, out.stderr
    successes = [float(line.split("success")[1].split()[0]) for line in out.stdout.splitlines()
                 if line.startswith("step")]
    assert max(successes) >= 0.9, out.stdout


def test_no_her_runs(tmp_path):
    """--no-her is plain PPO: it runs and logs no relabelled data."""
    out = run_script("ppo_her", tmp_path, "--no-her", "--total-timesteps", "512", "--num-steps", "256")
    assert out.returncode == 0, out.stderr
    assert "step      512/512" in out.stdout


TINY = ["--num-envs", "8", "--num-steps", "64", "--hidden-size", "16", "--update-epochs", "2"]  # 512 steps/iteration


def test_start_up_and_summary_lines(tmp_path):
    """A run says where it logs, on which device, with what budget, before training; it ends with a summary line."""
    out = run_script("ppo_her", tmp_path, *TINY, "--total-timesteps", "1000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"run runs/{only_run(tmp_path).name} on cpu: PredatorPrey-v0")
    assert "budget 1000 env steps = 2 rollouts" in lines[0]
    assert "ETA" in lines[1]
    assert lines[-1].startswith("budget reached: step 1024/1000 after ") and "success rate" in lines[-1]


def test_resume_continues_bit_identically(tmp_path):
    """Two iterations in one run, or one iteration then `--resume` to two: identical weights and logged success."""
    scalars = assert_resume_is_identical("ppo_her", tmp_path, ["--seed", "2", *TINY], 512, 1024)
    assert sorted(scalars["charts/success_rate"]) == [512, 1024]


def test_checkpoint_every_and_resume_refusals(tmp_path):
    """--checkpoint-every writes during the run; a resume is refused with exit status 3 and one line when a typed flag
    changes learning, when the checkpoint is another script's or truncated, and when the budget is already spent;
    flags not typed are the run's own."""
    out = run_script("ppo_her", tmp_path, *TINY, "--total-timesteps", "1536", "--checkpoint-every", "1")
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    assert load_checkpoint(tmp_path)["iteration"] == 3
    wrong = assert_one_line_error_in_process("ppo_her", tmp_path, "--hidden-size", "32", "--resume", str(run))
    assert wrong.returncode == 3 and "the run has --hidden-size 16" in wrong.stderr
    other = assert_one_line_error_in_process("meher", tmp_path, "--resume", str(run))
    assert other.returncode == 3 and "not a checkpoint of meher.py" in other.stderr
    spent = assert_one_line_error_in_process("ppo_her", tmp_path, "--resume", str(run))
    assert spent.returncode == 3 and "--total-timesteps must be above the 1536 steps done" in spent.stderr
    more = run_script("ppo_her", tmp_path, "--resume", str(run), "--total-timesteps", "2048")
    assert more.returncode == 0 and "step     2048/2048" in more.stdout, more.stderr
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    cut = assert_one_line_error_in_process("ppo_her", tmp_path, "--resume", str(run), "--total-timesteps", "4096")
    assert cut.returncode == 3 and "cannot read" in cut.stderr


def test_ctrl_c_exits_130_with_log_and_checkpoint(tmp_path):
    """Ctrl-C mid-run: the iteration finishes, a loadable checkpoint and the TensorBoard log are kept, the summary says
    why the run ended, and the exit status is 130 (so `run && next` stops)."""
    out = interrupt_script("ppo_her", tmp_path, "--num-steps", "256", "--total-timesteps", "10000000")
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    assert "Ctrl-C: the run stops after this iteration" in out.stdout.splitlines()[1]  # said at once
    assert out.stdout.splitlines()[-1].startswith("interrupted by Ctrl-C: ")
    assert load_checkpoint(tmp_path)["global_step"] >= 256
    assert "charts/SPS" in read_scalars(tmp_path)


def test_capture_video_writes_a_playable_file(tmp_path):
    """--capture-video --eval-episodes 1: one MP4 under videos/{run_name}/ that imageio reads back, frame by frame."""
    import imageio

    out = run_script("ppo_her", tmp_path, *TINY, "--total-timesteps", "512", "--capture-video", "--eval-episodes", "1")
    assert out.returncode == 0, out.stderr
    (video,) = (tmp_path / "videos" / only_run(tmp_path).name).iterdir()
    frames = [frame for frame in imageio.get_reader(video)]
    assert 2 <= len(frames) <= 22 and frames[0].ndim == 3 and frames[0].shape[2] == 3


@pytest.mark.parametrize("flags", [["--update-epochs", "0"], ["--learning-rate", "-1"], ["--exp-name", "a/b"],
                                   ["--cuda"], ["--gamma", "1.5"], ["--target-kl", "-1"], ["--seed", "abc"],
                                   ["--total-timesteps", "1e5"], ["--bogus-flag"], ["--prey", "jumpy"],
                                   ["--her-k", "0"], ["--env-id", "FetchReach-v4", "--prey", "static"],
                                   ["--her-strategy", "best"], ["--resume", "no/such/run"],
                                   ["--num-envs", "100000000"], ["--num-envs", "100000", "--total-timesteps", "1"],
                                   ["--stop-at-success", "-3"], ["--save-model", "--eval-episodes", "0"],
                                   ["--num-dims", "9"], ["--radius", "-1"], ["--gamma", "1"]])
def test_bad_input_is_one_line(tmp_path, flags):
    """Bad input through the script's main block in this process (`--update-epochs 0` also through the real command
    line): non-zero exit, a message naming the flag as typed, no traceback, no run folder (too many envs for the
    budget is refused before anything is allocated or run)."""
    if flags == ["--cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    check = assert_one_line_error if flags == ["--update-epochs", "0"] else assert_one_line_error_in_process
    out = check("ppo_her", tmp_path, *flags)
    named = [flag for flag in flags if flag.startswith("--")]
    assert any(flag in out.stderr for flag in named) or "Unrecognized" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_help_is_the_full_help(tmp_path):
    """--help still prints tyro's whole help, to stdout, with exit status 0."""
    out = run_in_process("ppo_her", tmp_path, "--help")
    assert out.returncode == 0 and "--checkpoint-every" in out.stdout and "--capture-video" in out.stdout
