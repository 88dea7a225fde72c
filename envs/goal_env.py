"""The environment side that every script shares: one constructor for any goal task, and one player of
evaluation episodes that can also record them as MP4.

    envs = make_goal_env("FetchPush-v4", num_envs=16)   # or "PredatorPrey-v0", prey="attract", ...
    successes = play_episodes("PredatorPrey-v0", policy, episodes=100, seed=2, video_path="videos/eval.mp4")

Errors name the option as the scripts' flag (`--num-dims`, `--env-id`), because the scripts pass their flags
straight through. A GoalEnvError is a SystemExit: uncaught, it ends the script with its one line and status 1.
"""

import contextlib
import ctypes
import ctypes.util
import inspect
import io
import os
import re
import shlex
import signal
import sys
import warnings

import gymnasium as gym
import imageio
import numpy as np

from envs.predator_prey import PredatorPreyCore, PredatorPreyEnv



class GoalEnvError(SystemExit):
    """A goal task that cannot be built as asked: "error: " and one line that names the flag."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def drawing_libraries() -> str:
    """The MUJOCO_GL settings that can draw offscreen here: those whose library is installed."""
    found = [f"MUJOCO_GL={name.lower()}" for name in ("EGL", "OSMesa") if ctypes.util.find_library(name)]
    return " or ".join(found) or "MUJOCO_GL=egl or osmesa, once libEGL or libOSMesa is installed"


try:
    with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about the Adroit envs on stderr
        import gymnasium_robotics
except Exception as error:  # MuJoCo loads MUJOCO_GL's library on import; OSMesa, say, may be missing
    reason = f"{type(error).__name__}: {error}".splitlines()[0]
    raise GoalEnvError(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}: MuJoCo cannot load it ({reason}); "
                       f"unset it, or set {drawing_libraries()}")
gym.register_envs(gymnasium_robotics)  # FetchReach-v4, FetchPush-v4, ..., HandManipulateBlock-v1, HandReach-v3


def quiet_broken_pipe(kind, error, trace, excepthook=sys.excepthook):
    """`python algorithms/ppo_her.py --help | head`: the reader has gone; stop quietly as other tools do."""
    if not issubclass(kind, BrokenPipeError):
        return excepthook(kind, error, trace)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit would fail too


sys.excepthook = quiet_broken_pipe

PREDATOR_PREY = "PredatorPrey-v0"
PREDATOR_PREY_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(PredatorPreyCore).parameters.items()
    if name != "num_envs"
}


def as_typed(name: str, value) -> str:
    """The flag of an option and its value as typed on the command line (else as given): `--grid-size 0`,
    `--no-her`, `--exp-name 'a b'`; the scripts' refusals and this module's echo their input this way."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    words = sys.argv[1:]
    for i, word in enumerate(words):
        typed_flag, equals, typed_value = word.partition("=")
        if typed_flag.replace("_", "-") == flag and (equals or i + 1 < len(words)):
            value = typed_value if equals else words[i + 1]
    typed = shlex.quote(str(value))
    return f"{flag} {typed if typed.isprintable() else repr(str(value))}"  # one line, a newline typed too


def shared_rules(args) -> list:
    """The rules every script's flags share, as (name, valid, rule): floats finite (inf and nan would reach the
    networks), a seed numpy takes, a run name that is one plain folder name."""
    rules = [(name, np.isfinite(value), "finite") for name, value in vars(args).items() if isinstance(value, float)]
    rules += [("seed", 0 <= args.seed < 2**32, "in [0, 2**32)"),
              ("exp_name", re.fullmatch(r"[\w.-]{1,100}", args.exp_name), "1-100 letters, digits, '_', '.', '-'")]
    return rules


def refuse_broken(rules: list, args) -> None:
    """Ends the script at the first broken rule, in one line: `error: --flag VALUE: must be RULE`, as typed."""
    for name, valid, rule in rules:
        if not valid:
            raise SystemExit(f"error: {as_typed(name, getattr(args, name))}: must be {rule}")


def make_goal_env(env_id: str, num_envs: int, restart_finished: bool = True, capture_video: bool = False,
                  **options) -> gym.vector.VectorEnv:
    """`num_envs` copies of a goal task stepped together, with the task's vectorised `compute_reward`, its
    `max_episode_steps` and its `terminal_rewards` (the rewards that end an episode) as attributes. `options` are
    Predator-Prey's (prey, spawn, num_dims, ...). capture_video: also check that the task can draw here.

    restart_finished=True: an episode that ends restarts inside the step that ended it, its last observation in
    the info's `final_obs`. restart_finished=False: a finished env waits for the next reset (one episode per env
    from reset). The info always holds `is_success`, `episode_steps` and `episode_return` of the step."""
    if env_id == PREDATOR_PREY:
        autoreset_mode = "same_step" if restart_finished else "next_step"
        try:
            envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                autoreset_mode=autoreset_mode, **options)
        except ValueError as error:  # Predator-Prey's messages: "OPTION must be RULE, got VALUE"
            option, _, reason = str(error).rpartition(", got ")[0].partition(" ")
            for name in PREDATOR_PREY_DEFAULTS:  # the options the rule names, as flags too
                reason = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), reason)
            raise GoalEnvError(f"{as_typed(option, options[option])}: {reason}")
        capture_and_failure = (1.0, -1.0)
        envs = GoalVectorEnv(envs, envs.compute_reward, envs.max_episode_steps, False, capture_and_failure)
    else:
        changed = [as_typed(name, value) for name, value in options.items() if value != PREDATOR_PREY_DEFAULTS[name]]
        if changed:
            raise GoalEnvError(f"{', '.join(changed)}: Predator-Prey options, not for --env-id {env_id}")
        compute_reward, max_episode_steps = check_goal_env(env_id)
        mode = "async" if num_envs > 1 else "sync"  # MuJoCo in subprocesses: all cores simulate
        no_autoreset = dict(autoreset_mode=gym.vector.AutoresetMode.DISABLED)
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited: Ctrl-C is for the script, not them
        try:
            in_workers = [end_with_the_script] if mode == "async" else None
            envs = gym.make_vec(env_id, num_envs, mode, vector_kwargs=no_autoreset, wrappers=in_workers)
        finally:
            signal.signal(signal.SIGINT, sigint)
        envs = GoalVectorEnv(envs, compute_reward, max_episode_steps, restart_finished)
    if capture_video:  # only now: a bad option is refused as itself, not as a task that cannot draw
        try:
            check_can_draw(env_id, **options)
        except GoalEnvError:
            envs.close()  # MuJoCo's subprocesses, before the script exits
            raise
    return envs


def end_with_the_script(env: gym.Env) -> gym.Env:
    """In a MuJoCo worker process: end it when the script ends. A second Ctrl-C stops the script at once, and its
    workers, finding their pipe closed, would each print a traceback."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    return env


def check_goal_env(env_id: str):
    """The task's compute_reward and episode length, from one env in this process, once the task is known to be a
    goal env whose compute_reward scores many goals in one call (relabelling scores whole batches)."""
    try:
        with warnings.catch_warnings():  # gymnasium warns of an old version (in colour) before it refuses it
            warnings.simplefilter("ignore")
            env = gym.make(env_id)
        if env.spec.id != env_id.split(":")[-1]:  # gym.make also takes FetchReach for FetchReach-v4
            raise gym.error.Error(f"no version in {env_id}")
        if env.spec.id == PREDATOR_PREY:  # through another name it would miss its terminal rewards
            raise GoalEnvError(f"--env-id {env_id}: must be {PREDATOR_PREY}")
    except (gym.error.Error, ImportError, TypeError) as error:
        versions = sorted(name for name in gym.registry if name.split("-v")[0] == env_id.split("-v")[0])
        if versions:  # a missing, old or mistyped version: name the newest
            raise GoalEnvError(f"--env-id {env_id}: must be {versions[-1]}")
        raise GoalEnvError(f"--env-id {env_id}: {error}")
    max_episode_steps = env.spec.max_episode_steps
    env = env.unwrapped
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict) or {"observation", "achieved_goal", "desired_goal"} - set(space):
        raise GoalEnvError(f"--env-id {env_id}: must be a goal env (observation, achieved_goal, desired_goal)")
    goals = np.zeros((2, *space["desired_goal"].shape))
    try:
        rewards = env.compute_reward(goals, goals, None)
    except Exception:
        rewards = None
    if np.shape(rewards) != (2,):
        raise GoalEnvError(f"--env-id {env_id}: must be a goal env whose compute_reward scores many goals at once")
    return env.compute_reward, max_episode_steps


class GoalVectorEnv(gym.vector.VectorWrapper):
    """A vector env of a goal task, its episodes counted: `episode_steps` and `episode_return` in the info.
    reset_finished: reset the envs whose episode ended inside the step that ended it (gymnasium's vector envs,
    built without autoreset; Predator-Prey's restarts by itself)."""

    episode_steps = 0
    episode_return = 0.0

    def __init__(self, envs, compute_reward, max_episode_steps: int, reset_finished: bool, terminal_rewards=()):
        super().__init__(envs)
        self.compute_reward = compute_reward
        self.max_episode_steps = max_episode_steps
        self.reset_finished = reset_finished
        self.terminal_rewards = terminal_rewards  # Fetch and Hand: none, their episodes end at the time limit

    def step(self, actions):
        obs, reward, terminations, truncations, infos = self.env.step(actions)
        done = terminations | truncations
        final_obs = infos.get("final_obs", obs)
        if self.reset_finished and done.any():
            obs = self.env.reset(options=dict(reset_mask=done))[0]
        steps = self.episode_steps + 1
        returns = self.episode_return + reward
        self.episode_steps = np.where(done, 0, steps)
        self.episode_return = np.where(done, 0.0, returns)
        counts = dict(episode_steps=steps, episode_return=returns)
        return obs, reward, terminations, truncations, {**counts, **infos, "final_obs": final_obs}


def make_env(env_id: str, render_mode=None, **options) -> gym.Env:
    """One plain env: Predator-Prey's own class (gym.make's TimeLimit would cut its failure step), or gym.make's."""
    if env_id == PREDATOR_PREY:
        return PredatorPreyEnv(render_mode=render_mode, **options)
    return gym.make(env_id, render_mode=render_mode)


def check_can_draw(env_id: str, **options) -> None:
    """--capture-video: refuse the run at once if the task cannot draw here (MuJoCo draws offscreen only with
    MUJOCO_GL=egl or osmesa, and only where that library is installed), rather than train for hours and find no
    video."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():  # GLFW's failed probes
            warnings.simplefilter("ignore")
            env = make_env(env_id, "rgb_array", **options)
            env.reset(seed=0)
            env.render()
            env.close()
    except Exception as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        raise GoalEnvError(f"--capture-video: {env_id} cannot draw here ({reason}); set {drawing_libraries()}")


def play_episodes(env_id: str, policy, episodes: int, seed: int, video_path: str = "", **options) -> np.ndarray:
    """`episodes` episodes of `policy` (one observation dict -> one action) in one env seeded once with `seed`,
    one after another; returns their is_success. With a video_path every step is drawn and the episodes are
    written there as one MP4 (imageio with the ffmpeg binary of imageio-ffmpeg)."""
    env = make_env(env_id, "rgb_array" if video_path else None, **options)
    frames = []
    successes = []
    obs, _ = env.reset(seed=seed)
    while len(successes) < episodes:
        if video_path:
            frames.append(env.render())
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            if video_path:
                frames.append(env.render())  # the episode's last picture, before the next one starts
            successes.append(info["is_success"])
            obs, _ = env.reset()
    env.close()
    if video_path:
        os.makedirs(os.path.dirname(video_path) or ".", exist_ok=True)
        imageio.mimwrite(video_path, frames, fps=env.metadata.get("render_fps", 10))
    return np.array(successes, dtype=np.float64)
