"""Fuzz test of the five scripts' command lines (Hypothesis): every flag of each script's `Args`, found with
dataclasses.fields (a new flag is fuzzed without a change here), given boundary, zero, negative, huge, nan, inf and
'-0' values, odd strings, valid and invalid choices, both forms of a bool flag, in all three spellings tyro takes
(`--a-b v`, `--a-b=v`, `--a_b v`), one to three flags at a time (a flag may repeat: the last counts) after a
tiny-budget base command line (BASE), run through the script's own `__main__` block in this process (as
conftest.run_in_process does: the imports are paid once), each in a fresh temporary folder. --resume gets only
folders without a checkpoint, --cuda only where there is no GPU, --capture-video only its --no- form.

The property (`problems`): the run either starts and completes its first iteration (PPO scripts) or cycle (her_ddpg,
sher), or it is refused before anything starts:

* started: it prints its start line ("run ..."), at which the fuzz presses Ctrl-C (SIGINT to this process; the
  script's own handler takes it): the run ends after that first iteration/cycle with its checkpoint and status 130,
  no traceback, nothing on stderr (a RuntimeWarning is a run going wrong), and finite networks in the checkpoint
  (nan/inf in the weights is a run silently misled);
* refused: status 1 or 3 with exactly one line on stderr, `error: --flag VALUE...` naming a flag of the command line
  with its last value as typed (plain, shell-quoted or repr'd), `error: --resume: ...` for status 3; or status 2 with
  tyro's box naming a flag or word of the command line; no traceback, and no runs/ or videos/ left behind;
* whatever else it holds, a command line is refused when a float flag is nan, --env-id is not a goal task, or
  --exp-name is empty or holds a space or '/' (docs/running.md: values that would silently mislead a run are
  refused), and meher's when it holds --no-her.

Guards. Each example may use FUZZ_GUARD_S (20) seconds of CPU (SIGPROF raises out of the run; CPU time, so that a
loaded machine does not fail a run) and six times that of wall clock (SIGALRM, for a run that waits); a hit is a
failure. On the base budget a first iteration or cycle takes 0.03-0.5 s, and the largest legitimate values met take
up to 12 s (her_ddpg --n-test-rollouts 1000); a run still in its first iteration after 20 s of CPU is one that a flag
made unbounded (--n-batches 10**6, --her-k 10**6), and as the Ctrl-C handler stops a run only between iterations,
its user cannot stop it without losing the checkpoint: the script should refuse the value. Each example also has an
address-space limit, FUZZ_MEMORY_GB (4) above what this process holds, so that a size too big to allocate fails here
as a MemoryError traceback instead of swapping or being killed; a C call that ignores both signals ends the whole
test process after the wall-clock guard + 120 s (faulthandler prints where). A command line with --torch-threads
above 16 runs as a real subprocess (RLIMIT_CPU, RLIMIT_AS and a timeout for the same guards):
torch.set_num_threads(10**6) crashes the process that calls it.

Runs:

    python -m pytest tests/test_command_line.py     # the suite's profile: derandomized (the same examples on every
                                                    # run), FUZZ_EXAMPLES (20) per script, no shrinking; about 60 s
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_command_line.py -k fuzzed
                                                    # random, FUZZ_EXAMPLES (500) per script, shrinks a failure to
                                                    # its smallest command line; about 3-5 min when nothing fails
    FUZZ_COLLECT=/tmp/fuzz.jsonl HYPOTHESIS_PROFILE=long python -m pytest tests/test_command_line.py -k fuzzed
        # a survey: every failing example is appended to the file (one JSON line) and the search goes on; the test
        # fails at the end if any was found. FUZZ_TRACE=1 prints every example's command line, status and time.

Every failure found is kept in REGRESSIONS (minimal command lines), checked by the same property.
"""
import dataclasses
import faulthandler
import gc
import json
import math
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import typing
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis import strategies as st

from conftest import ALGORITHMS, Utf8StringIO, load_script, run_main_block

torch.set_num_threads(1)

SCRIPTS = ["ppo_her", "meher", "ppo_her_2_ppo", "her_ddpg", "sher"]
PPO_BASE = ["--num-steps", "32", "--total-timesteps", "32", "--hidden-size", "8", "--update-epochs", "1",
            "--eval-episodes", "2", "--minibatch-size", "16"]
OFF_POLICY_BASE = ["--env-id", "PredatorPrey-v0", "--total-timesteps", "40", "--n-cycles", "1", "--n-batches", "1",
                   "--n-test-rollouts", "1", "--hidden-size", "8", "--batch-size", "8", "--num-envs", "2"]
BASE = {"ppo_her": PPO_BASE, "meher": PPO_BASE, "ppo_her_2_ppo": PPO_BASE, "her_ddpg": OFF_POLICY_BASE,
        "sher": OFF_POLICY_BASE}

GUARD_S = float(os.environ.get("FUZZ_GUARD_S", "20"))  # CPU seconds of one example
WALL_S = 6 * GUARD_S  # wall-clock seconds of one example: for a run that waits rather than computes
MEMORY_GB = float(os.environ.get("FUZZ_MEMORY_GB", "4"))
COLLECT = os.environ.get("FUZZ_COLLECT", "")
TRACE = os.environ.get("FUZZ_TRACE", "")  # print every example's command line, status and time
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "command-line")
settings.register_profile("command-line", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20")), derandomize=True,
                          database=None, deadline=None, print_blob=True, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")), deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile(PROFILE if PROFILE in ("command-line", "long") else "command-line")


# ---------------------------------------------------------------------------------------------------------------
# values


INTS = [0, 1, -1, 2, 3, 8, 16, 31, 32, 33, 64, 100, 1000, 10**6, 10**9, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
        2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**31), -(2**63)]
INT_WORDS = ["-0", "+1", "1_000", " 1", "1e3", "1.5", "0x10", "abc", "", "nan", "inf"]
FLOATS = ["0", "-0", "-0.0", "5e-324", "1e-308", "1e-8", "0.5", "1", "1.0", "2", "-1", "0.99", "0.999999", "100",
          "1e308", "1.7976931348623157e308", "1e309", "inf", "-inf", "nan", "-nan", "NaN", "Infinity", "1e-400",
          str(2**63), "abc", "", "1,5"]
STRINGS = ["", " ", "a b", "a/b", "/", "../x", ".", "..", "x" * 300, "é", "a\tb", "a\nb", "-", "-x", "x", "%s",
           "{0}", "'", '"', "\\", "a:b", "runs"]
BAD_ENV_IDS = ["", " ", "PredatorPrey-v1", "PredatorPrey-v0 ", "predatorprey-v0", "PredatorPrey", "NoSuchEnv-v0",
               "CartPole-v1", "FetchReach", "FetchReach-v0", "a:b", "no_such_module:Env-v0", "envs:PredatorPrey-v0",
               "x" * 300, "../PredatorPrey-v0"]
BAD_CHOICES = ["", "RANDOM", "random ", "jumpy", "0", "1", "7", "-0", "2.0", "nan", "None"]
NOT_A_GOAL_TASK = set(BAD_ENV_IDS)
RESUME = ["no/such/run", ".", "runs", "/nonexistent", ""]  # never an existing run: each must be refused (or "": none)
RAW = [["--no-such-flag"], ["x"], ["--help"], ["--her=True"], ["--seed"], ["--", "x"], ["-h"]]


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag as typed: the words, and the flag (dash form) and value that a refusal should echo."""

    words: tuple
    flag: str
    value: typing.Optional[str]  # None: a flag without a value (a bool flag, a raw word)


def typed(name: str, value: str, form: str) -> Flag:
    flag = "--" + name.replace("_", "-")
    spelled = "--" + name if form == "underscores" else flag
    words = (f"{spelled}={value}",) if form == "equals" else (spelled, value)
    return Flag(words, flag, value)


def numbers(default, words):
    values = [str(v) for v in INTS] + words + ([str(default), str(default + 1), str(default - 1)]
                                               if isinstance(default, int) and not isinstance(default, bool) else [])
    return st.one_of(st.sampled_from(values), st.integers(-5, 200).map(str))


def floats(default):
    values = FLOATS + ([repr(default)] if isinstance(default, float) else [])
    return st.one_of(st.sampled_from(values), st.floats(-10, 10, allow_nan=False).map(repr))


def field_strategy(field: dataclasses.Field, kind) -> st.SearchStrategy:
    """The flags that fuzz one field of Args, in the three spellings tyro takes (--a-b v, --a-b=v, --a_b v)."""
    name, default = field.name, field.default
    form = st.sampled_from(["dashes"] * 6 + ["equals", "underscores"])
    if kind is bool:
        if name in ("cuda", "capture_video"):  # only what must be refused (or the default)
            bad = ["--cuda"] if name == "cuda" and not torch.cuda.is_available() else []
            return st.sampled_from([*bad, f"--no-{name.replace('_', '-')}"]).map(lambda w: Flag((w,), w, None))
        flag = "--" + name.replace("_", "-")
        return st.sampled_from([flag, "--no-" + flag[2:]]).map(lambda w: Flag((w,), w, None))
    if name == "resume":
        values = st.sampled_from(RESUME)
    elif name == "env_id":
        values = st.sampled_from(["PredatorPrey-v0"] * len(BAD_ENV_IDS) + BAD_ENV_IDS)
    elif typing.get_origin(kind) is typing.Literal:
        values = st.sampled_from([str(choice) for choice in typing.get_args(kind)] + BAD_CHOICES)
    elif typing.get_origin(kind) is typing.Union:  # Optional[int] / Optional[float]
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        values = st.one_of(st.just("None"), numbers(1, INT_WORDS) if inner is int else floats(1.0))
    elif kind is int:
        values = numbers(default, INT_WORDS)
    elif kind is float:
        values = floats(default)
    elif kind is str:
        values = st.sampled_from(STRINGS)
    else:
        raise TypeError(f"--{name}: no strategy for {kind}: add one here")
    return st.tuples(values, form).map(lambda vf: typed(name, *vf))


_modules = {}


def load_script_cached(script):
    if script not in _modules:
        _modules[script] = load_script(script)
    return _modules[script]


def command_lines(script: str) -> st.SearchStrategy:
    """One to three flags (a field may come twice: the last one counts), rarely a raw odd word."""
    module = load_script_cached(script)
    hints = typing.get_type_hints(module.Args)
    fields = st.one_of([field_strategy(field, hints[field.name]) for field in dataclasses.fields(module.Args)])
    raw = st.sampled_from(RAW).map(lambda words: Flag(tuple(words), words[0], None))
    return st.lists(st.one_of(*[fields] * 9, raw), min_size=1, max_size=3)


# ---------------------------------------------------------------------------------------------------------------
# running one command line


class GuardHit(BaseException):
    """The example ran past its guard (a BaseException: the scripts' `except Exception` let it through)."""


class StartWatcher(Utf8StringIO):
    """The script's stdout: at its start line ("run ..." / "resuming ...") press Ctrl-C, once."""

    def __init__(self):
        super().__init__()
        self.pressed = False
        self.problem = ""

    def write(self, text):
        written = super().write(text)
        if not self.pressed and re.search(r"^(run|resuming) .*\n", self.getvalue(), re.M):
            self.pressed = True
            if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_DFL, signal.SIG_IGN):
                self.problem = "the start line came before the script's Ctrl-C handler was installed"
            else:
                signal.raise_signal(signal.SIGINT)  # the script's handler runs, as on Ctrl-C in a terminal
        return written


@dataclasses.dataclass
class Outcome:
    status: typing.Union[int, str]  # "guard": the CPU guard ended it; "wall": the wall-clock one
    stdout: str
    stderr: str
    seconds: float
    problem: str = ""


def address_space_limit():
    """RLIMIT_AS for the example: what this process maps now plus MEMORY_GB."""
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    return int(vm_kb * 1024 + MEMORY_GB * 2**30)


def interpreter_warnings():
    """Warnings as the interpreter shows them, on the script's stderr (pytest would keep them to itself)."""
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


def run_in_this_process(script: str, cwd: str, argv: list) -> Outcome:
    """conftest.run_in_process with the fuzz's Ctrl-C at the start line and its guards."""
    stdout, stderr = StartWatcher(), Utf8StringIO()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGALRM, signal.SIGPROF)}
    threads, limits = torch.get_num_threads(), resource.getrlimit(resource.RLIMIT_AS)
    status, start = 0, time.time()

    def guard(signum, frame):
        raise GuardHit("guard" if signum == signal.SIGPROF else "wall")

    try:
        signal.signal(signal.SIGPROF, guard)
        signal.signal(signal.SIGALRM, guard)
        soft = address_space_limit() if limits[1] == resource.RLIM_INFINITY else min(address_space_limit(), limits[1])
        resource.setrlimit(resource.RLIMIT_AS, (soft, limits[1]))
        faulthandler.dump_traceback_later(WALL_S + 120, exit=True)
        signal.setitimer(signal.ITIMER_PROF, GUARD_S)  # CPU time: a loaded machine does not make a run fail
        signal.setitimer(signal.ITIMER_REAL, WALL_S)
        with warnings.catch_warnings():
            interpreter_warnings()
            status = run_main_block(script, cwd, argv, stdout, stderr, let_through=GuardHit)
    except GuardHit as hit:  # in the run, or between its end and the end of the guard
        status = hit.args[0]
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        if status not in (0, 130) and os.path.isdir(os.path.join(cwd, "runs")):  # cut short: its TensorBoard
            close_leaked_writers()  # writer would go on writing to runs/ relative to this process's folder
        resource.setrlimit(resource.RLIMIT_AS, limits)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        torch.set_num_threads(threads)
    return Outcome(status, stdout.getvalue(), stderr.getvalue(), time.time() - start, stdout.problem)


def close_leaked_writers():
    from torch.utils.tensorboard import SummaryWriter

    for thing in gc.get_objects():
        if type(thing) is SummaryWriter:
            try:
                thing.close()
            except Exception:
                pass


def run_as_subprocess(script: str, cwd: str, argv: list) -> Outcome:
    """The real command line, for what could crash this process: Ctrl-C at the start line, the same guards (the
    address space: 16 GB, as each of many threads reserves a stack)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    limit = int(max(16, MEMORY_GB) * 2**30)
    start = time.time()

    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (int(GUARD_S) + 3, int(GUARD_S) + 6))  # + its imports; then SIGXCPU

    proc = subprocess.Popen([sys.executable, str(ALGORITHMS / f"{script}.py"), *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limits)
    lines = []
    try:
        for line in proc.stdout:  # until the start line, or the end
            lines.append(line)
            if re.match(r"(run|resuming) ", line):
                proc.send_signal(signal.SIGINT)
                break
        stdout, stderr = proc.communicate(timeout=max(1.0, WALL_S - (time.time() - start)))
        status = "guard" if proc.returncode == -signal.SIGXCPU else proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        status = "wall"
    return Outcome(status, "".join(lines) + stdout, stderr, time.time() - start)


def needs_subprocess(argv: list) -> bool:
    try:
        return int(given_flags(argv).get("--torch-threads") or "1") > 16
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# the property


def given_flags(argv: list) -> dict:
    """{flag (dash form, as --name or --no-name): its last value as typed (None: no value)}."""
    given = {}
    for i, word in enumerate(argv):
        if not word.startswith("--") or word == "--":
            continue
        flag, equals, value = word.partition("=")
        flag = "--" + flag[2:].replace("_", "-")
        if equals:
            given[flag] = value
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            given[flag] = argv[i + 1]
        else:
            given[flag] = None
    return given


def is_nan(word: str) -> bool:
    try:
        return math.isnan(float(word))
    except ValueError:
        return False


def must_be_refused(script: str, argv: list) -> str:
    """Why this command line must be refused whatever else it holds ('' when it need not)."""
    given = given_flags(argv)
    hints = typing.get_type_hints(load_script_cached(script).Args)
    for flag, value in given.items():
        kind = hints.get(flag[2:].replace("-", "_"))
        if value is not None and kind in (float, typing.Optional[float]) and is_nan(value):
            return f"{flag} {value!r}: nan is no value of a flag"
    if given.get("--env-id") in NOT_A_GOAL_TASK:
        return f"--env-id {given['--env-id']!r} is not a goal task"
    name = given.get("--exp-name")
    if name is not None and (not name or re.search(r"[\s/]", name)):
        return f"--exp-name {name!r} cannot name a run folder"
    if script == "meher" and "--no-her" in given:
        return "meher --no-her: MEHER without relabelling is not MEHER; refuse rather than run PPO-HER's flags"
    return ""


def finite_networks(cwd: str) -> str:
    """'' when the checkpoint's networks are all finite, else which are not."""
    (checkpoint_path,) = Path(cwd).glob("runs/*/checkpoint.pt")
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    bad = []

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not torch.isfinite(value).all():
                bad.append(prefix)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)

    for key in ("agent", "learner"):
        walk(key, checkpoint.get(key))
    return ", ".join(bad[:5])


def problems(script: str, argv: list, out: Outcome, cwd: str) -> list:
    """What is wrong with how the script took this command line (an empty list: nothing)."""
    found = [out.problem] if out.problem else []
    text = out.stdout + out.stderr
    if out.status in ("guard", "wall"):
        # a value that only makes the run long (--n-batches, --update-epochs, ...) is the user's to choose: a run
        # that has started, printed nothing on stderr and is still in its first iteration at the guard is fine
        if re.match(r"(run|resuming) ", out.stdout) and not out.stderr.strip():
            return found
        return found + [f"ran past the guard, {GUARD_S:.0f} s of CPU, before its start line or with stderr"]
    if "Traceback" in text:
        return found + ["a traceback"]
    left = [name for name in ("runs", "videos") if (Path(cwd) / name).exists() and any((Path(cwd) / name).iterdir())]
    must_refuse = must_be_refused(script, argv)
    given = given_flags(argv)
    if ("--help" in argv or "-h" in argv) and "--" not in argv:  # the help, wherever it is, unless a parse error
        help_shown = out.status == 0 and "--total-timesteps" in out.stdout  # came before it on the line
        if not help_shown and not (out.status == 2 and out.stderr.lstrip().startswith("╭")):
            found.append(f"--help: status {out.status}, no help on stdout")
        return found
    if out.status in (0, 130):
        if must_refuse:
            found.append(f"accepted: {must_refuse}")
        if not re.match(r"(run|resuming) ", out.stdout):
            found.append(f"status {out.status} without the start line")
        elif out.status != 130 or "interrupted by Ctrl-C" not in out.stdout:
            found.append(f"status {out.status} after Ctrl-C (expected 130 and 'interrupted by Ctrl-C')")
        else:
            nonfinite = finite_networks(cwd)
            if nonfinite:
                found.append(f"accepted, and the networks in its checkpoint are not finite: {nonfinite}")
        if out.stderr.strip():
            found.append("a completed run wrote to stderr")
        return found
    if left:
        found.append(f"refused (status {out.status}) but left {' and '.join(left)}/ behind")
    if out.status == 2:
        if not out.stderr.lstrip().startswith("╭"):
            found.append("status 2 without tyro's box")
        elif not any(word in out.stderr for word in [*given, *argv, *filter(None, given.values())]
                     if word.strip() and word != "--"):
            found.append("tyro's box names no flag or word of the command line")
        return found
    if out.status not in (1, 3):
        return found + [f"status {out.status}"]
    lines = out.stderr.strip().splitlines()
    if len(lines) != 1:
        return found + [f"{len(lines)} lines on stderr, not one"]
    match = re.match(r"error: (--[\w-]+)", lines[0])
    if not match:
        return found + ["the line does not start 'error: --flag'"]
    flag, rest = match.group(1), lines[0][match.end():]
    if out.status == 3 and flag != "--resume":
        found.append("status 3 for another flag than --resume")
    if flag not in given:  # a rule of two flags names the other one in its text: `--radius 1.0: ... --grid-size`
        if not any(typed in rest for typed in given):
            return found + [f"names {flag}, which is not on the command line"]
        return found
    value = given[flag]
    if value is not None and flag != "--resume":
        echoes = [f" {value}", f" {shlex.quote(value)}", f" {value!r}"]  # repr: a newline typed, on one line
        if not any(rest.startswith(echo) and rest[len(echo):][:1] in (":", ",", " ", "") for echo in echoes):
            found.append(f"does not echo {flag}'s value as typed ({value!r})")
    elif value is None and rest[:1] not in (":", ",", " ", ""):
        found.append(f"names {flag}{rest.split(':')[0]}")
    return found


def run_and_check(script: str, flags) -> tuple:
    """Run BASE + flags in a fresh folder: (argv, outcome, problems)."""
    argv = BASE[script] + [word for flag in flags for word in flag.words]
    with tempfile.TemporaryDirectory(prefix="fuzz-", ignore_cleanup_errors=True) as cwd:
        run = run_as_subprocess if needs_subprocess(argv) else run_in_this_process
        out = run(script, cwd, argv)
        return argv, out, problems(script, argv, out, cwd)


def report(script: str, argv: list, out: Outcome, found: list) -> str:
    stderr = out.stderr.strip().splitlines()
    shown = stderr[:1] + (["..."] + stderr[-2:] if len(stderr) > 3 else stderr[1:])
    return (f"{script}.py {shlex.join(argv[len(BASE[script]):])}  (after the base flags)\n"
            f"  status {out.status} after {out.seconds:.1f} s: {'; '.join(found)}\n"
            + "".join(f"  stderr| {line}\n" for line in shown))


def record(script: str, argv: list, out: Outcome, found: list) -> None:
    stderr = out.stderr.strip().splitlines()
    with open(COLLECT, "a") as log:
        log.write(json.dumps(dict(script=script, flags=argv[len(BASE[script]):], status=out.status,
                                  problems=found, seconds=round(out.seconds, 2), first=stderr[:1],
                                  last=stderr[-2:])) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("script", SCRIPTS)
def test_fuzzed_command_lines_run_or_are_refused_in_one_line(script):
    """See the module's docstring."""
    collected = []

    @settings(FUZZ, database=None if FUZZ.database is None else  # one per script: `fuzz` has the same name in each
              DirectoryBasedExampleDatabase(f".hypothesis/command-line/{script}"))
    @given(command_lines(script))
    def fuzz(flags):
        argv, out, found = run_and_check(script, flags)
        if TRACE:
            flags_typed = shlex.join(argv[len(BASE[script]):])
            print(f"{script:>13} {out.status!s:>5} {out.seconds:5.2f}s {flags_typed}  {found or ''}",
                  file=sys.__stderr__, flush=True)
        if found and COLLECT:
            record(script, argv, out, found)
            collected.append(found)
        elif found:
            raise AssertionError(report(script, argv, out, found))

    fuzz()
    assert not collected, f"{len(collected)} failing command lines, written to {COLLECT}"


def test_base_flags_override_earlier_ones():
    """tyro takes the last of a repeated flag: a fuzzed flag after the base flags counts."""
    for script in SCRIPTS:
        argv, out, found = run_and_check(script, [typed("total_timesteps", "64", "dashes")])
        assert not found, report(script, argv, out, found)
        assert "budget 64 env steps" in out.stdout, out.stdout


# Every failure the fuzz found (and those the issue named), as its minimal command line after the base flags, kept
# once fixed. Values that only make a run long (--n-batches 10**6, --update-epochs 10**6) are not kept: they pass
# only by spending the whole guard (a started run, still clean, is fine).
PPO = ["ppo_her", "meher", "ppo_her_2_ppo"]
OFF_POLICY = ["her_ddpg", "sher"]
LONG_NAME = "x" * 300
EVERY_SCRIPT = [  # the same failure in each of the five scripts
    ["--exp-name", "a b"], ["--exp-name", ""], ["--exp-name", "a\nb"], ["--exp-name", LONG_NAME],
    ["--env-id", "PredatorPrey"], ["--env-id", "FetchReach"], ["--env-id", "envs:PredatorPrey-v0"],
    ["--env-id", "CartPole-v1"], ["--hidden-size", "1000000"], ["--hidden-size", str(2**63 - 1)],
    ["--hidden-size", str(2**63)],
]
PPO_ONLY = [
    ["--learning-rate", "inf"], ["--learning-rate", "1e308"], ["--learning-rate", "3.5e38"],
    ["--weight-decay", "1e308"], ["--clip-coef", "1e308"], ["--clip-coef", "3.5e38"], ["--init-logstd", "100"],
    ["--init-logstd", "1e308"], ["--init-logstd", "-1e39"], ["--minibatch-size", "100000"], ["--grid-size", "2"],
    ["--grid-size", "1e-8"], ["--grid-size", "1e30"], ["--grid-size", "1e39"], ["--grid-size", "1e308"],
    ["--max-episode-steps", str(2**64)],
    ["--clip-coef", str(10**6)], ["--init-logstd", "5"], ["--init-logstd", "-5"],  # the largest accepted
]
OFF_POLICY_ONLY = [
    ["--norm-clip", "1e308"], ["--norm-eps", "1e308"], ["--policy-lr", "1e308"], ["--policy-lr", "3.5e38"],
    ["--q-lr", "1e308"], ["--q-lr", "3.5e38"], ["--clip-obs", "1e308"], ["--num-envs", "1000000"],
    ["--num-envs", "1000000000"], ["--num-envs", str(2**63 - 1)], ["--batch-size", "1000000000"],
    ["--batch-size", str(2**63)], ["--buffer-size", "1000000000"], ["--buffer-size", str(2**63)],
    ["--torch-threads", "1000"], ["--torch-threads", "1000000"], ["--torch-threads", str(2**32)],
    ["--norm-clip", str(10**6)], ["--norm-eps", str(10**6)],  # the largest accepted
]
REGRESSIONS = (
    [(script, flags) for script in SCRIPTS for flags in EVERY_SCRIPT]
    + [(script, flags) for script in PPO for flags in PPO_ONLY]
    + [(script, flags) for script in OFF_POLICY for flags in OFF_POLICY_ONLY]
    + [("ppo_her", ["--her-k", "1000000"]), ("ppo_her_2_ppo", ["--her-k", "1000000"]),  # the guard
       ("meher", ["--no-her"]), ("meher", ["--s-ratio", "5e-324"]), ("meher", ["--s-ratio", "1e-300"]),
       ("ppo_her_2_ppo", ["--switch-threshold", "2"]), ("her_ddpg", ["--noise-eps", "1e308"]),
       ("her_ddpg", ["--noise-eps", str(10**6)]), ("her_ddpg", ["--action-l2", str(10**19)])]
)
REGRESSION_IDS = [f"{s} {shlex.join(f).replace(LONG_NAME, 'x*300')}" for s, f in REGRESSIONS]


@pytest.mark.parametrize("script, flags", REGRESSIONS,
                         ids=REGRESSION_IDS)
def test_regressions(script, flags):
    """The command lines that the fuzz found failing, kept: the same property."""
    argv, out, found = run_and_check(script, [Flag(tuple(flags), "", None)])
    assert not found, report(script, argv, out, found)
