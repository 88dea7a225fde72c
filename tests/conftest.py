"""Shared test helpers: load an algorithm script as a module, run one as a command, read its TensorBoard log."""
import importlib.util
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

ALGORITHMS = Path(__file__).resolve().parents[1] / "algorithms"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # `from conftest import ...` in the test files


def load_script(name: str):
    """Import algorithms/<name>.py without running its main block."""
    spec = importlib.util.spec_from_file_location(name, ALGORITHMS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, cwd, *flags, timeout=600) -> subprocess.CompletedProcess:
    """Run algorithms/<name>.py with flags in `cwd` (its runs/ lands there), one torch thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ALGORITHMS / f"{name}.py"), *flags], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_in_process(name: str, cwd, *flags) -> subprocess.CompletedProcess:
    """Run algorithms/<name>.py's main block in this process, as `python algorithms/<name>.py *flags` in `cwd` would,
    without paying the imports again: returns its exit status, stdout and stderr as run_script does."""
    stdout, stderr = Utf8StringIO(), Utf8StringIO()  # tyro draws its box in UTF-8 only for a UTF-8 stream
    status = run_main_block(name, cwd, flags, stdout, stderr)
    return subprocess.CompletedProcess(sys.argv, status, stdout.getvalue(), stderr.getvalue())


def run_main_block(name: str, cwd, flags, stdout, stderr, let_through=()) -> int:
    """The exit status of algorithms/<name>.py's main block run here in `cwd`, its output into the two streams. An
    uncaught exception is printed to stderr as the interpreter prints it (a traceback) with status 1; a SystemExit
    with a message prints the message with status 1. Exceptions of the types in `let_through` are raised."""
    import contextlib
    import runpy
    import traceback

    argv, where, sigint = sys.argv, os.getcwd(), signal.getsignal(signal.SIGINT)
    try:
        os.chdir(cwd)
        sys.argv = [str(ALGORITHMS / f"{name}.py"), *flags]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                runpy.run_path(sys.argv[0], run_name="__main__")
            except let_through:
                raise
            except SystemExit as exit:
                if isinstance(exit.code, str):
                    print(exit.code, file=sys.stderr)
                return exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
            except BaseException:
                traceback.print_exc()
                return 1
        return 0
    finally:
        sys.argv = argv
        os.chdir(where)
        signal.signal(signal.SIGINT, sigint)  # the scripts install their Ctrl-C handler


def interrupt_script(name: str, cwd, *flags) -> subprocess.CompletedProcess:
    """Start algorithms/<name>.py, and once it prints its first progress line send Ctrl-C (SIGINT to its whole
    process group, as a terminal does); returns how it ended."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, str(ALGORITHMS / f"{name}.py"), *flags], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first_line = proc.stdout.readline()  # training is under way
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, first_line + stdout, stderr)


def assert_one_line_error(name: str, cwd, *flags, run=run_script) -> subprocess.CompletedProcess:
    """Bad flags: non-zero exit and no traceback; the script's own checks write one `error:` line, tyro's parse errors
    (a typo, a value outside a Literal's choices) its own box. Returns the run for further checks."""
    out = run(name, cwd, *flags)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    if not out.stderr.lstrip().startswith("╭"):  # not tyro's box: one line of the script's
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out


def read_scalars(cwd) -> dict:
    """The scalars of the one TensorBoard run under cwd/runs: {tag: {global step: value}}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = (Path(cwd) / "runs").iterdir()
    log = EventAccumulator(str(run), size_guidance={"scalars": 0})
    log.Reload()
    return {tag: {event.step: event.value for event in log.Scalars(tag)} for tag in log.Tags()["scalars"]}


def only_run(cwd) -> Path:
    """The one run folder under cwd/runs."""
    (run,) = (Path(cwd) / "runs").iterdir()
    return run


def load_checkpoint(cwd) -> dict:
    """The checkpoint.pt of the one run under cwd/runs (written by the script itself, so fully unpickled)."""
    import torch

    return torch.load(only_run(cwd) / "checkpoint.pt", weights_only=False)


def assert_resume_is_identical(name: str, tmp_path, flags, steps_first: int, steps_total: int) -> dict:
    """Run algorithms/<name>.py to steps_total in one go, and to steps_first then `--resume` to steps_total in another
    folder: the final checkpoints hold identical networks and counters, and both logs hold identical scalars (the
    wall-clock ones aside). Returns the logged scalars."""
    import torch

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    for cwd, steps in ((whole, steps_total), (resumed, steps_first)):
        out = run_script(name, cwd, *flags, "--total-timesteps", str(steps))
        assert out.returncode == 0, out.stderr
    out = run_script(name, resumed, *flags, "--total-timesteps", str(steps_total), "--resume", str(only_run(resumed)))
    assert out.returncode == 0 and out.stdout.startswith("resuming"), out.stdout + out.stderr
    a, b = load_checkpoint(whole), load_checkpoint(resumed)
    assert a["global_step"] == b["global_step"] == steps_total
    assert a["agent"].keys() == b["agent"].keys()
    assert all(torch.equal(a["agent"][key], b["agent"][key]) for key in a["agent"]), "the networks differ"
    assert a["recent_success"] == b["recent_success"]
    wall_clock = {"charts/SPS", "her/switch_seconds"}
    scalars, resumed_scalars = read_scalars(whole), read_scalars(resumed)
    assert {tag: v for tag, v in scalars.items() if tag not in wall_clock} == {
        tag: v for tag, v in resumed_scalars.items() if tag not in wall_clock}
    return scalars


# a goal env whose compute_reward scores one goal at a time (import it as one_goal_env:OneGoalAtATime-v0)
NOT_VECTORISED_ENV = '''
import gymnasium as gym
import numpy as np


class OneGoalAtATime(gym.Env):
    """A goal env whose compute_reward takes one goal, not a batch."""

    observation_space = gym.spaces.Dict({key: gym.spaces.Box(-1, 1, (2,)) for key in
                                         ("observation", "achieved_goal", "desired_goal")})
    action_space = gym.spaces.Box(-1, 1, (2,))

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def compute_reward(self, achieved_goal, desired_goal, info):
        return -float(np.linalg.norm(achieved_goal - desired_goal) > 0.05)


gym.register("OneGoalAtATime-v0", entry_point=OneGoalAtATime)
'''


class Utf8StringIO(io.StringIO):
    """A captured stream that says UTF-8, as a pipe to a script does: tyro then draws its error box as on the command
    line ('╭'), not in ASCII."""

    encoding = "utf-8"


def assert_one_line_error_in_process(name: str, cwd, *flags) -> subprocess.CompletedProcess:
    """assert_one_line_error through run_in_process: the same checks, without a subprocess's 2-3.5 s of imports."""
    return assert_one_line_error(name, cwd, *flags, run=run_in_process)
