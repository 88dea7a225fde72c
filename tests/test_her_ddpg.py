"""Tests of algorithms/her_ddpg.py (DDPG + HER as in OpenAI baselines; docs/her_ddpg.md): the relabelling, the
replay buffer, the learner, and short runs through the real command line (resume, Ctrl-C, video, bad input)."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import (assert_one_line_error, assert_one_line_error_in_process, interrupt_script, load_script,
                      read_scalars, run_in_process, run_script)
from envs import make_goal_env

her_ddpg = load_script("her_ddpg")

K4 = 1.0 - 1.0 / (1.0 + 4)  # future_p for replay_k = 4
FETCH = her_ddpg.Task(horizon=50, target_range=(-50.0, 0.0), done_on_reward=False, observe_achieved_goal=False)
PREDATOR_PREY = her_ddpg.Task(horizon=21, target_range=(-1.0, 1.0), done_on_reward=True, observe_achieved_goal=True)


def labelled_episodes(lengths, T, goal_dim=3, obs_dim=2, act_dim=2, first_id=0):
    """Episodes whose every entry says where it comes from: ag[e, j] = (id, j, 0), g[e, j] = (id, j, 1),
    o[e, j] = (id, j), u[e, t] = (id, t). Rows past an episode's end are NaN: they must never be sampled."""
    n = len(lengths)
    ids = np.arange(first_id, first_id + n, dtype=np.float32)[:, None]
    steps = np.arange(T + 1, dtype=np.float32)[None, :]
    ep = dict(o=np.stack(np.broadcast_arrays(ids, steps), -1).astype(np.float32),
              ag=np.stack(np.broadcast_arrays(ids, steps, np.zeros_like(steps)), -1).astype(np.float32),
              g=np.stack(np.broadcast_arrays(ids, steps, np.ones_like(steps)), -1).astype(np.float32),
              u=np.stack(np.broadcast_arrays(ids, steps[:, :T]), -1).astype(np.float32),
              length=np.asarray(lengths, np.int64))
    assert ep["o"].shape == (n, T + 1, obs_dim) and ep["ag"].shape == (n, T + 1, goal_dim)
    assert ep["u"].shape == (n, T, act_dim)
    for e, length in enumerate(lengths):
        for key in ("o", "ag", "g"):
            ep[key][e, length + 1:] = np.nan
        ep["u"][e, length:] = np.nan
    return ep


def zero_reward(ag_next, g, info):
    return np.zeros(len(g), np.float32)


def sample(episodes, n, future_p=K4, compute_reward=zero_reward, task=FETCH, seed=0):
    return her_ddpg.sample_her_transitions(episodes, n, future_p, compute_reward, task, np.random.default_rng(seed))


def decode(batch):
    """What labelled_episodes' entries say of a sampled batch: episode, step t, whether the goal was relabelled
    (an achieved goal, third label 0) and, if so, the step it was achieved at."""
    ep, t = batch["o"][:, 0].astype(int), batch["o"][:, 1].astype(int)
    relabelled = batch["g"][:, 2] == 0
    return ep, t, relabelled, batch["g"][:, 1].astype(int)


def test_relabelled_share_is_k_over_k_plus_1():
    """k = 4 relabels 1 - 1/(1+k) = 4/5 of a batch (baselines future_p); k = 0 relabels nothing."""
    episodes = labelled_episodes([50] * 20, T=50)
    assert abs(decode(sample(episodes, 200_000))[2].mean() - 0.8) < 0.005
    assert not decode(sample(episodes, 10_000, future_p=0.0))[2].any()


def test_future_goals_come_from_the_same_episode_after_the_transition():
    """A relabelled goal is the achieved goal of the same episode at a step in t+1 .. length (the final obs
    included); the other goals and the next goals are the stored ones; every step t+1 .. T can be drawn."""
    T = 50
    episodes = labelled_episodes([T] * 8, T=T)
    batch = sample(episodes, 100_000)
    ep, t, her, goal_step = decode(batch)
    np.testing.assert_array_equal(batch["u"], episodes["u"][ep, t])          # o, u, o_next of transition (ep, t)
    np.testing.assert_array_equal(batch["o_next"], episodes["o"][ep, t + 1])
    g = batch["g"][her]
    np.testing.assert_array_equal(g[:, 0], ep[her])                          # same episode
    assert (goal_step[her] >= t[her] + 1).all() and (goal_step[her] <= T).all()  # at or after the next step
    np.testing.assert_array_equal(batch["g_next"][her], g)                   # a relabelled goal stays fixed
    offsets = goal_step[her] - t[her]
    assert offsets.min() == 1 and offsets.max() == T                         # both ends reachable
    real = ~her
    np.testing.assert_array_equal(batch["g"][real], episodes["g"][ep[real], t[real]])
    np.testing.assert_array_equal(batch["g_next"][real], episodes["g"][ep[real], t[real] + 1])


def test_no_sample_from_beyond_an_episode_end():
    """Predator-Prey episodes end early: no transition, next obs or future goal from past an episode's end
    (those rows are NaN here), and every step of a short episode can still be drawn."""
    T = 21
    lengths = [1, 2, 5, 21, 3, 20]
    episodes = labelled_episodes(lengths, T=T)
    batch = sample(episodes, 50_000)
    assert set(batch) == {"o", "g", "u", "r", "o_next", "g_next", "done"}   # what the learner takes, no more
    for key, value in batch.items():
        assert not np.isnan(value).any(), key
    ep, t, her, goal_step = decode(batch)
    length = np.asarray(lengths)[ep]
    assert (t < length).all() and (goal_step[her] <= length[her]).all()
    assert len(np.unique(t[ep == 3])) == 21


def test_ring_buffer_keeps_whole_episodes_when_it_wraps():
    """Episodes stored past the end of the ring overwrite the oldest whole episodes: every slot holds one
    episode, the newest ones are kept, and samples never mix two episodes."""
    T = 10
    buffer = her_ddpg.EpisodeBuffer(5 * T + 3, T, obs_dim=2, goal_dim=3, act_dim=2)  # room for 5 episodes
    assert buffer.size == 5
    for first in range(0, 9, 3):  # 3 batches of 3 episodes with ids 0..8, varying lengths
        buffer.store(labelled_episodes([T, 4, 7], T=T, first_id=first))
    stored = buffer.episodes()
    ids = stored["o"][:, 0, 0]
    assert sorted(ids) == [4, 5, 6, 7, 8]
    for e in range(5):
        length = stored["length"][e]
        assert (stored["o"][e, : length + 1, 0] == ids[e]).all()
        assert (stored["ag"][e, : length + 1, 0] == ids[e]).all()
        assert (stored["u"][e, :length, 0] == ids[e]).all()
        assert length == [T, 4, 7][int(ids[e]) % 3]
    batch = sample(stored, 20_000)
    for key in ("g", "o_next", "u", "g_next"):
        np.testing.assert_array_equal(batch[key][:, 0], batch["o"][:, 0])
    assert not np.isnan(batch["g"]).any()


def record_episodes(env, n_episodes, T, seed, chase=False):
    """Episodes of a single goal env, stored like rollout() does, with the step rewards. Random actions; with
    `chase`, every other episode heads for the desired goal (so that Predator-Prey episodes end in captures)."""
    space = env.observation_space
    ep = her_ddpg.empty_episodes(n_episodes, T, space["observation"].shape[0], space["desired_goal"].shape[0],
                                 env.action_space.shape[0])
    rewards = np.full((n_episodes, T), np.nan, np.float32)
    env.action_space.seed(seed)
    for e in range(n_episodes):
        obs, _ = env.reset(seed=seed + e)
        ep["o"][e, 0], ep["ag"][e, 0], ep["g"][e, 0] = obs["observation"], obs["achieved_goal"], obs["desired_goal"]
        for t in range(T):
            u = env.action_space.sample()
            if chase and e % 2:
                u = np.clip(obs["desired_goal"] - obs["achieved_goal"], -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(u)
            ep["u"][e, t], rewards[e, t] = u, reward
            ep["o"][e, t + 1], ep["ag"][e, t + 1], ep["g"][e, t + 1] = (obs["observation"], obs["achieved_goal"],
                                                                         obs["desired_goal"])
            ep["length"][e] += 1
            if terminated or truncated:
                break
    return ep, rewards


def locate(batch, episodes):
    """The (episode, step) each sampled transition came from, found by its o, u and o_next (unique rows here)."""
    rows = {(episodes["o"][e, t].tobytes(), episodes["u"][e, t].tobytes(), episodes["o"][e, t + 1].tobytes()): (e, t)
            for e, length in enumerate(episodes["length"]) for t in range(length)}
    found = np.array([rows[o.tobytes(), u.tobytes(), o_next.tobytes()]
                      for o, u, o_next in zip(batch["o"], batch["u"], batch["o_next"])])
    return found[:, 0], found[:, 1]


def test_rewards_equal_the_env_rewards_fetch():
    """FetchReach: real transitions get exactly the reward the env paid; relabelled ones the sparse
    -(|ag_{t+1} - g'| > 0.05) of the env's compute_reward; no done mask."""
    env = gym.make("FetchReach-v4").unwrapped
    episodes, rewards = record_episodes(env, 3, 50, seed=3)
    real = sample(episodes, 2000, future_p=0.0, compute_reward=env.compute_reward)
    np.testing.assert_array_equal(real["r"], rewards[locate(real, episodes)])
    batch = sample(episodes, 5000, compute_reward=env.compute_reward)
    ep, t = locate(batch, episodes)
    ag_next = episodes["ag"][ep, t + 1]
    expected = -(np.linalg.norm(ag_next - batch["g"], axis=-1) > 0.05).astype(np.float32)
    np.testing.assert_array_equal(batch["r"], expected)
    reached = (batch["g"] == ag_next).all(-1)  # relabelled with the very next achieved goal: a success
    assert reached.any() and (batch["r"][reached] == 0).all()
    assert not batch["done"].any()
    env.close()


def test_rewards_equal_the_env_rewards_predator_prey():
    """PredatorPrey: real transitions get the env's reward (+1 capture, -1 on step 21, else 0); relabelled ones
    +1 within the radius of g', else -1 on step 21, else 0; done exactly where the reward is nonzero."""
    env = gym.make("PredatorPrey-v0").unwrapped
    episodes, rewards = record_episodes(env, 40, 21, seed=5, chase=True)
    assert (episodes["length"] < 21).any() and (episodes["length"] == 21).any()  # captures and time-outs
    real = sample(episodes, 5000, future_p=0.0, compute_reward=env.compute_reward, task=PREDATOR_PREY)
    np.testing.assert_array_equal(real["r"], rewards[locate(real, episodes)])
    assert {-1.0, 0.0, 1.0} <= set(real["r"])
    batch = sample(episodes, 20_000, compute_reward=env.compute_reward, task=PREDATOR_PREY)
    ep, t = locate(batch, episodes)
    caught = np.linalg.norm(episodes["ag"][ep, t + 1] - batch["g"], axis=-1) <= 1.0
    expected = np.where(caught, 1.0, np.where(t + 1 > 20, -1.0, 0.0))
    np.testing.assert_array_equal(batch["r"], expected)
    np.testing.assert_array_equal(batch["done"], batch["r"] != 0)


def test_normalizer_matches_numpy_and_clips():
    """Running mean/std over chunks equal numpy's over all data; std is floored at eps (a constant column);
    normalised values are clipped to +-clip_range."""
    rng = np.random.default_rng(0)
    data = rng.normal([1.0, -3.0, 7.0], [2.0, 0.5, 0.0], size=(5000, 3))
    norm = her_ddpg.Normalizer(3, eps=0.01, clip_range=5.0)
    for chunk in np.array_split(data, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean, data.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std, np.maximum(data.std(0), 0.01), rtol=1e-6)
    assert norm.std[2] == 0.01
    x = torch.tensor([[1.0, -3.0, 7.0], [1e6, -1e6, 7.001], [data[0, 0], data[0, 1], 6.0]])
    out = norm.normalize(x).numpy()
    expected = np.clip((x.numpy() - norm.mean) / norm.std, -5, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert out[1, 0] == 5.0 and out[1, 1] == -5.0 and out[2, 2] == -5.0


def test_task_and_critic_targets():
    """Each task's horizon, target range and done mask (Fetch: [-1/(1-gamma), 0], no done, even for the last
    transition of an episode or a success, so all bootstrap; Predator-Prey: [-1, 1], the failure step 21, done
    on a nonzero reward), and y = clip(r + gamma (1 - done) Q', range)."""
    gamma = 0.98
    for env_id, expected in (("FetchPush-v4", FETCH), ("PredatorPrey-v0", PREDATOR_PREY)):
        envs = make_goal_env(env_id, 1, restart_finished=False)
        task = her_ddpg.task_of(her_ddpg.Args(env_id=env_id, gamma=gamma), envs)
        assert task.target_range == pytest.approx(expected.target_range)
        assert task == dataclasses.replace(expected, target_range=task.target_range)
        envs.close()
    r = torch.tensor([-1.0, -1.0, 0.0, 0.0, -1.0])
    q_next = torch.tensor([-100.0, -10.0, 5.0, -10.0, -10.0])
    done = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    y = her_ddpg.critic_target(r, q_next, done, gamma, (-50.0, 0.0))
    np.testing.assert_allclose(y.numpy(), [-50.0, -1 - 9.8, 0.0, -9.8, -1.0], rtol=1e-6)
    y = her_ddpg.critic_target(r, q_next, done, gamma, (-1.0, 1.0))
    np.testing.assert_allclose(y.numpy(), [-1.0, -1.0, 1.0, -1.0, -1.0], rtol=1e-6)
    batch = sample(labelled_episodes([50] * 4, T=50), 20_000, task=FETCH)
    assert (decode(batch)[1] == 49).any() and not batch["done"].any()


def test_task_defaults():
    """Flags left unset take the task's defaults (baselines' 8-worker set-up, its 1-CPU FetchReach set-up, the
    Predator-Prey action L2 scaled to its Q range); a flag given on the command line wins."""
    def filled(**kwargs):
        args = her_ddpg.Args(**kwargs)
        her_ddpg.fill_task_defaults(args)
        return args.num_envs, args.batch_size, args.n_cycles, args.action_l2

    assert filled(env_id="FetchPush-v4") == (16, 2048, 50, 1.0)
    assert filled(env_id="HandManipulateBlock-v1") == (16, 2048, 50, 1.0)
    assert filled(env_id="FetchReach-v4") == (2, 256, 10, 1.0)
    assert filled(env_id="PredatorPrey-v0") == (16, 256, 10, 0.02)
    assert filled(env_id="FetchReach-v4", num_envs=3, action_l2=0.5) == (3, 256, 10, 0.5)


def test_predator_prey_rollout_cuts_at_the_budget_and_shows_the_predator():
    """rollout() on the batched Predator-Prey env: episodes end at capture or step 21, a budget cuts the batch
    to exactly that many transitions, and the network observation is [prey velocity, predator position]."""
    envs = make_goal_env("PredatorPrey-v0", 6, restart_finished=False)
    chase = lambda o, g: np.clip(g - o[:, 3:], -1, 1)  # noqa: E731  (o ends with the predator position)
    episodes = her_ddpg.rollout(envs, chase, PREDATOR_PREY, 6 * 21, seed=0)
    assert (episodes["length"] <= 21).all()
    np.testing.assert_array_equal(episodes["o"][..., 3:], episodes["ag"])
    np.testing.assert_array_equal(episodes["success"], episodes["return"] > 0)  # +1 capture or -1 time-out
    assert episodes["success"].mean() > 0.5
    assert her_ddpg.rollout(envs, chase, PREDATOR_PREY, 50)["length"].sum() == 50
    envs.close()


def last_step(stdout):
    line = [line for line in stdout.splitlines() if line.startswith("epoch")][-1]
    return line.split()[3]


def test_fetch_smoke_run_writes_tensorboard_and_stops_at_the_budget(tmp_path):
    """A tiny FetchReach run (env subprocesses) says where its run goes, exits 0, writes a TensorBoard event file,
    a checkpoint and a saved model, ends exactly at the budget (130 = 2 x 50 + a last batch cut to 2 x 15 steps)
    and ends with the summary line."""
    flags = ["--env-id", "FetchReach-v4", "--n-batches", "2", "--n-cycles", "1", "--n-test-rollouts", "1"]
    proc = run_script("her_ddpg", tmp_path, *flags, "--total-timesteps", "130", "--save-model")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run runs/{run_dir.name} on cpu: FetchReach-v4, budget 130 env steps"
    assert last_step(proc.stdout) == "130/130"
    assert lines[-1].startswith("budget reached: step 130/130 after ")
    model = f"runs/{run_dir.name}/her_ddpg.cleanrl_model"
    assert lines[-1].endswith(f"; logs and checkpoint in runs/{run_dir.name}, model {model}")
    assert {path.name.split(".")[0] for path in run_dir.iterdir()} == {"events", "checkpoint", "her_ddpg"}


def assert_same(a, b, where="") -> None:
    """a == b exactly, through nested dicts, lists, tuples, tensors, arrays and numpy generators."""
    if isinstance(a, np.random.Generator):
        assert_same(a.bit_generator.state, b.bit_generator.state, where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], where=f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, where=f"{where}[{i}]")
    elif isinstance(a, (torch.Tensor, np.ndarray)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)
    else:
        assert a == b or (a != a and b != b), where  # nan: no test yet


TINY_PP = ["--env-id", "PredatorPrey-v0", "--num-envs", "4", "--n-cycles", "2", "--n-batches", "3", "--batch-size",
           "32", "--hidden-size", "16", "--n-test-rollouts", "2", "--seed", "5"]


@pytest.mark.parametrize("script", ["her_ddpg", "sher"])  # sher: the same code around another learner's state
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, script):
    """On CPU, 3 epochs in one go, and 2 epochs then --resume (no other flag) to the same budget, end with
    identical checkpoints (networks, targets, optimisers, normalisers, buffer, generators, counters, the envs
    mid-episode) and the resumed run goes on in the same TensorBoard log with identical scalars."""
    for name in ("whole", "parts"):
        (tmp_path / name).mkdir()
    assert run_script(script, tmp_path / "whole", *TINY_PP, "--total-timesteps", "500").returncode == 0
    whole_log = read_scalars(tmp_path / "whole")
    second_epoch_end = sorted(whole_log["charts/epoch"])[1]
    assert run_script(script, tmp_path / "parts", *TINY_PP, "--total-timesteps", str(second_epoch_end)).returncode == 0
    (run_dir,) = (tmp_path / "parts" / "runs").iterdir()
    resumed = run_script(script, tmp_path / "parts", "--resume", str(run_dir), "--total-timesteps", "500")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.startswith(f"resuming {run_dir} at step {second_epoch_end} on cpu")
    whole, parts = (torch.load(next((tmp_path / name).glob("runs/*/checkpoint.pt")), weights_only=False)
                    for name in ("whole", "parts"))
    assert whole.keys() == parts.keys()
    for key in whole.keys() - {"args", "seconds", "envs"}:
        assert_same(whole[key], parts[key], where=key)
    envs = [checkpoint["envs"] for checkpoint in (whole, parts)]  # the env generators go on alike:
    assert_same(*(env.reset()[0] for env in envs))
    assert_same(*(env.step(np.ones((4, 3), np.float32))[0] for env in envs))
    parts_log = read_scalars(tmp_path / "parts")
    assert len(whole_log["eval/success_rate"]) == 3
    assert {tag: v for tag, v in parts_log.items() if tag != "charts/SPS"} == {
        tag: v for tag, v in whole_log.items() if tag != "charts/SPS"}


def test_resume_refusals_exit_3_with_one_line(tmp_path, monkeypatch):
    """--resume refuses with exit status 3 and one `error: --resume: ...` line: a flag that changes learning,
    a budget already spent, another script's checkpoint, a truncated one. A crash while a checkpoint is written
    leaves the previous one whole."""
    assert run_script("her_ddpg", tmp_path, *TINY_PP, "--total-timesteps", "200").returncode == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    checkpoint = run_dir / "checkpoint.pt"
    good = checkpoint.read_bytes()
    def crash(state, path):  # a crash half-way through writing
        open(path, "wb").write(good[:100])
        raise ZeroDivisionError

    monkeypatch.setattr(torch, "save", crash)  # the script's own torch, in this process
    crashed = run_in_process("her_ddpg", tmp_path, "--resume", str(run_dir), "--total-timesteps", "400")
    monkeypatch.undo()
    assert crashed.returncode == 1 and "ZeroDivisionError" in crashed.stderr
    assert checkpoint.read_bytes() == good
    refusals = [("her_ddpg", ["--gamma", "0.9"], "the run has --gamma 0.98"),
                ("her_ddpg", ["--env-id", "FetchReach-v4"], "the run has --env-id PredatorPrey-v0"),
                ("her_ddpg", ["--total-timesteps", "100"], "--total-timesteps must be above the 200 steps done"),
                ("sher", [], "is not a checkpoint of sher.py")]
    for script, flags, says in refusals:
        out = assert_one_line_error_in_process(script, tmp_path, "--resume", str(run_dir), *flags)
        assert out.returncode == 3 and out.stderr.startswith("error: --resume: ") and says in out.stderr, out.stderr
    checkpoint.write_bytes(good[: len(good) // 2])
    out = assert_one_line_error_in_process("her_ddpg", tmp_path, "--resume", str(run_dir))
    assert out.returncode == 3 and "cannot read" in out.stderr


def test_ctrl_c_exits_130_with_a_checkpoint(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a FetchReach run with env
    subprocesses: the run says at once that it stops after the cycle, then stops with a checkpoint of the steps
    done, closes its log, says why it ended and exits 130."""
    flags = ["--env-id", "FetchReach-v4", "--n-batches", "1", "--n-cycles", "1", "--n-test-rollouts", "1",
             "--total-timesteps", "1000000"]
    proc = interrupt_script("her_ddpg", tmp_path, *flags)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "Ctrl-C: the run stops after this cycle (Ctrl-C again: at once)" in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    steps = torch.load(run_dir / "checkpoint.pt", weights_only=False)["global_step"]
    assert proc.stdout.splitlines()[-1].startswith(f"interrupted by Ctrl-C: step {steps}/1000000 after ")


def test_capture_video_writes_a_playable_mp4_of_a_test_episode(tmp_path):
    """--capture-video on Predator-Prey: one epoch writes videos/{run_name}/epoch_1.mp4, whose frames imageio reads
    back (one per step of the test episode plus the first)."""
    import imageio.v3 as iio

    proc = run_script("her_ddpg", tmp_path, *TINY_PP, "--total-timesteps", "100", "--capture-video")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (video,) = tmp_path.glob("videos/*/epoch_1.mp4")
    frames = iio.imread(video)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and 2 <= len(frames) <= 22 and frames.std() > 0


def test_capture_video_without_an_offscreen_renderer_is_refused_at_once(tmp_path, monkeypatch):
    """A MuJoCo task with MUJOCO_GL unset cannot draw offscreen: the run is refused before it starts, in one line
    that names --capture-video and the fix, rather than training for hours without video."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    out = assert_one_line_error("her_ddpg", tmp_path, "--env-id", "FetchReach-v4", "--capture-video")
    assert out.stderr.startswith("error: --capture-video: FetchReach-v4 cannot draw here") and "MUJOCO_GL" in out.stderr
    assert not (tmp_path / "runs").exists()


BAD_VALUES = [  # (flags, what the one line must say): the script's own checks
    (["--policy-lr", "-1"], "--policy-lr -1: must be in (0, 1]"), (["--gamma", "1.5"], "--gamma 1.5: must be in (0, 1)"),
    (["--exp-name", "a/b"], "--exp-name a/b"), (["--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (["--n-test-rollouts", "0"], "--n-test-rollouts 0: must be >= 1"), (["--prey", "static"], "--prey static"),
    (["--buffer-size", "10"], "--buffer-size 10: must be >="), (["--env-id", "NoSuchEnv-v0"], "--env-id NoSuchEnv-v0"),
] + ([(["--cuda"], "--cuda")] if not torch.cuda.is_available() else [])


@pytest.mark.parametrize("flags, says", BAD_VALUES, ids=[" ".join(flags) for flags, _ in BAD_VALUES])
def test_bad_values_are_one_line_naming_the_flag(tmp_path, flags, says):
    """A bad value ends the script non-zero before any run starts, with one `error: ...` line on stderr naming the
    flag and no traceback (in this process; `--gamma 1.5` also through the real command line)."""
    check = assert_one_line_error if flags == ["--gamma", "1.5"] else assert_one_line_error_in_process
    out = check("her_ddpg", tmp_path, *flags)
    assert out.stderr.startswith("error: ") and says in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flags, says", [(["--seed", "abc"], ["--seed"]), (["--no-such-flag"], ["--no-such-flag"]),
                                         (["--prey", "jumpy"], ["--prey", *her_ddpg.Args.__annotations__["prey"].__args__])])
def test_parse_errors_are_tyros_message(tmp_path, flags, says):
    """What tyro cannot parse ends the script with tyro's own message (status 2, no traceback): it names the flag
    and, for a choice, lists the valid values."""
    out = run_in_process("her_ddpg", tmp_path, *flags)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert all(word in out.stderr for word in says), out.stderr
    assert not (tmp_path / "runs").exists()


def test_help_still_prints_the_help():
    """--help prints tyro's whole help to stdout with exit status 0."""
    proc = run_in_process("her_ddpg", ".", "--help")
    assert proc.returncode == 0 and "--checkpoint-every" in proc.stdout and "--resume" in proc.stdout
