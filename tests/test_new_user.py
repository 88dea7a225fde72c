"""What a new user hit on a fresh clone, each case through the real command line: a closed pipe after --help, a
second Ctrl-C on a MuJoCo run, a video refusal that recommends only a MUJOCO_GL that can work, one wording for every
refusal (flag and value as typed), and a closing line that says where the model and the video went."""
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ALGORITHMS, assert_one_line_error, only_run, run_script

TINY = ["--num-envs", "4", "--num-steps", "64", "--hidden-size", "8", "--update-epochs", "1", "--total-timesteps", "256"]


@pytest.mark.parametrize("script", ["her_ddpg", "ppo_her"])
def test_help_into_a_closed_pipe_is_quiet(script):
    """`script --help | head` where the reader has gone before the help is written: no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, str(ALGORITHMS / f"{script}.py"), "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # as `| true` does
    stderr = proc.stderr.read()
    proc.wait(timeout=60)
    assert stderr == ""


def test_second_ctrl_c_on_a_mujoco_run_stops_its_workers_quietly(tmp_path):
    """Ctrl-C twice on a FetchReach run with MuJoCo in 2 subprocesses: the script stops at once and its workers end
    with it, without a traceback each (they once printed 4-8 of them), and none is left running."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    flags = ["--env-id", "FetchReach-v4", "--num-envs", "2", "--num-steps", "5000", "--hidden-size", "8"]
    proc = subprocess.Popen([sys.executable, str(ALGORITHMS / "ppo_her.py"), *flags], cwd=tmp_path, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("run ")  # training is under way
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.stdout.readline().startswith("Ctrl-C: the run stops after this iteration")
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGINT
    assert "Traceback" not in stderr, stderr
    assert len(workers) == 2
    deadline = time.time() + 10
    while any(running(worker) for worker in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(running(worker) for worker in workers)


def running(pid: str) -> bool:
    """The process is there and not a zombie (nobody may reap an orphan in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_video_refusal_recommends_only_a_mujoco_gl_that_is_installed(tmp_path):
    """Where MuJoCo cannot draw, --capture-video is refused naming MUJOCO_GL settings whose library is installed
    here; a MUJOCO_GL whose library is missing stops every script, --help too, with one line instead of a traceback."""
    installed = {name: ctypes.util.find_library(library) for name, library in (("egl", "EGL"), ("osmesa", "OSMesa"))}
    env = dict(os.environ, MUJOCO_GL="glfw")  # no display here: glfw cannot draw
    out = subprocess.run([sys.executable, str(ALGORITHMS / "ppo_her.py"), "--env-id", "FetchReach-v4",
                          "--capture-video"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("error: --capture-video: FetchReach-v4 cannot draw here")
    for name, library in installed.items():
        assert (f"MUJOCO_GL={name}" in out.stderr) == bool(library), out.stderr
    if installed["osmesa"]:
        pytest.skip("OSMesa is installed here: MUJOCO_GL=osmesa works")
    env["MUJOCO_GL"] = "osmesa"
    out = subprocess.run([sys.executable, str(ALGORITHMS / "sher.py"), "--help"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("error: MUJOCO_GL=osmesa: MuJoCo cannot load it")
    assert len(out.stderr.splitlines()) == 1, out.stderr


@pytest.mark.parametrize("script, flags, says", [
    ("ppo_her_2_ppo", ["--switch-threshold", "2"], "error: --switch-threshold 2: must be in [0, 1]"),
    ("ppo_her", ["--grid-size", "0"], "error: --grid-size 0: must be in (0, 1e6]"),
    ("ppo_her", ["--radius=6"], "error: --radius 6: must be below --grid-size / 2"),
    ("ppo_her", ["--learning-rate", "inf"], "error: --learning-rate inf: must be finite"),
    ("ppo_her", ["--minibatch-size", "4096"], "error: --minibatch-size 4096: must be <= one rollout, 2048"),
    ("ppo_her", ["--exp-name", "a b"], "error: --exp-name 'a b': must be 1-100 letters, digits"),
    ("ppo_her", ["--exp-name", ""], "error: --exp-name '': must be 1-100 letters, digits"),
    ("meher", ["--no-her"], "error: --no-her: must be left out: MEHER relabels"),
    ("her_ddpg", ["--env-id", "FetchReach-v3"], "error: --env-id FetchReach-v3: must be FetchReach-v4"),
    ("ppo_her", ["--env-id", "PredatorPrey"], "error: --env-id PredatorPrey: must be PredatorPrey-v0"),
    ("sher", ["--polyak", "1.50"], "error: --polyak 1.50: must be in [0, 1]"),
])
def test_every_refusal_has_one_wording(tmp_path, script, flags, says):
    """`error: --flag VALUE: must be ...` with the flag and value as typed, for the scripts' own checks and the
    environment's alike; nothing before it (gymnasium's coloured warning of an old version once was)."""
    out = assert_one_line_error(script, tmp_path, *flags)
    assert out.stderr.startswith(says), out.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_refusal_names_the_flags_a_resume_may_change(tmp_path):
    """A refused resume lists the flags it may change as flags (`--total-timesteps`), not as field names."""
    out = run_script("ppo_her", tmp_path, *TINY)
    assert out.returncode == 0, out.stderr
    out = assert_one_line_error("ppo_her", tmp_path, "--resume", str(only_run(tmp_path)), "--gamma", "0.9")
    assert out.returncode == 3 and "may change only --total-timesteps, --stop-at-success" in out.stderr
    assert "_" not in out.stderr.split("may change only")[1]


def test_closing_line_says_where_the_model_and_the_video_went(tmp_path):
    """The last line names the log folder, the saved model and the video, and each is there."""
    out = run_script("ppo_her", tmp_path, *TINY, "--save-model", "--capture-video", "--eval-episodes", "1")
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    model = f"runs/{run.name}/ppo_her.cleanrl_model"
    video = f"videos/{run.name}/eval-step256.mp4"
    assert out.stdout.splitlines()[-1].endswith(f"logs and checkpoint in runs/{run.name}, model {model}, video {video}")
    assert (tmp_path / model).is_file() and (tmp_path / video).is_file()
