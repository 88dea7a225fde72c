"""The Ray runner: runs an experiment's unfinished runs as Ray tasks, on this machine or on a cluster.

Each run is one Ray task that runs the script's own command line (`python algorithms/<script>.py <flags> --seed S
--exp-name <run id>`) in a work folder of its own and sends the run's folder back, to experiments/NAME/<run id>/
here, where the runner writes the run's record (run_logs.write_record) and its marker. The script writes a
checkpoint regularly; an interrupted or failed run keeps its work folder, and the next `run` resumes it from that
checkpoint, unless the script refuses it (exit status REFUSED_RESUME), when it starts afresh.
"""
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from definitions import LOGS, ROOT, SCRIPTS, BadInput, Experiment, Run  # noqa: E402

# The exit status with which a script refuses `--resume` (another script's checkpoint, a flag that changes
# learning, a budget below the steps done, an unreadable checkpoint): the run then starts afresh without it.
REFUSED_RESUME = 3


# ---------------------------------------------------------------------------------------------------------------
# Ray: where the runs go
# ---------------------------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_address(address: str) -> str:
    """host:port of the cluster (`auto`: the one in RAY_ADDRESS or the last `ray start` on this machine); a
    BadInput, within seconds, when nothing listens there."""
    if address.startswith("ray://"):
        return address  # Ray Client: Ray checks it
    if address == "auto":
        recorded = Path(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp") / "ray" / \
            "ray_current_cluster"  # where `ray start` records its address, as Ray looks for it
        address = os.environ.get("RAY_ADDRESS") or (recorded.read_text().strip() if recorded.is_file() else "")
        if not address:
            raise BadInput("--address auto: no running Ray cluster found (start one with `ray start --head`)")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--address {address!r}: expected host:port, auto or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as error:
        raise BadInput(f"--address {address}: no Ray cluster there ({error.strerror or error})") from None
    return address


def start_ray(address: str | None):
    """Ray, started on this machine (no address) or joined (address); returns the module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if address is None or is_loopback(address.rpartition(":")[0]):
        # Ray replaces a loopback address by the host's own address unless it believes it is a one-machine
        # instance; with this it keeps every socket, and every connection, on 127.0.0.1. Read when ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import logging

    import ray

    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    with captured_stderr() as messages:  # Ray's C++ side repeats each failed connection attempt on stderr
        try:
            if address is None:  # its processes ignore Ctrl-C and hang-ups: the driver stops the runs in order
                with ignored_signals(signal.SIGINT, signal.SIGHUP):
                    ray.init(address="local", num_cpus=os.cpu_count(), **settings)
            else:
                ray.init(address=address, **settings)
            error = None
        except Exception as raised:
            error = raised
    if error is None:
        sys.stderr.write(messages())
        return ray
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    reasons = [line.rsplit("RPC error: ", 1)[-1] for line in messages().splitlines() if "RPC error" in line]
    hint = " (give the driver the cluster's token: RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)" if any(
        "AuthToken" in r for r in reasons) else ""
    raise BadInput(f"could not start or join {where}: {(reasons or str(error).strip().splitlines())[-1]}{hint}")


@contextlib.contextmanager
def ignored_signals(*signals):
    """In the block, `signals` are ignored, also by the processes started in it (an inherited disposition)."""
    main = threading.current_thread() is threading.main_thread()  # the only thread that may set handlers
    previous = [signal.signal(number, signal.SIG_IGN) for number in signals] if main else []
    try:
        yield
    finally:
        for number, handler in zip(signals, previous):
            signal.signal(number, handler)


@contextlib.contextmanager
def captured_stderr():
    """Collects what this process and its libraries write to file descriptor 2 in the block; yields a function
    that returns it once the block has ended."""
    sys.stderr.flush()
    saved, captured = os.dup(2), []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: "".join(captured)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def node_cpus(ray) -> list[float]:
    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]


# ---------------------------------------------------------------------------------------------------------------
# One run: the Ray task
# ---------------------------------------------------------------------------------------------------------------
# The script is started through this tiny program, which asks Linux to kill it if the task's worker process dies
# (a cancelled or lost task leaves no orphan training run), unblocks Ctrl-C (SIGINT, which Ray's worker blocks and
# would pass on blocked), then becomes `python algorithms/<script>.py ...`.
EXEC_WITH_PARENT_DEATH_SIGNAL = (
    "import ctypes, os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass  # not Linux: the task kills the script itself when it is cancelled\n"
    "if os.getppid() != int(os.environ.pop('RUN_PARENT_PID')):\n"
    "    sys.exit(137)  # the worker died before the signal was armed\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")


def execute_run(argv: list, code: dict, cpus: int, workdir: str, grace_seconds: float = 20.0) -> dict:
    """Runs `argv` (`python algorithms/<script>.py ...`) in `workdir` (a relative one: under this node's temporary
    folder) holding `code` (the scripts and the env package), with `cpus` threads; returns its exit code, seconds,
    and the folder's output as tar.gz bytes. A checkpoint left in the folder by an earlier attempt is resumed. The
    folder is deleted afterwards unless the run did not finish and has a checkpoint; a cancelled task first sends
    the script Ctrl-C, which makes it write its checkpoint, and kills it after `grace_seconds`."""
    import io
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import tarfile
    import tempfile
    import time

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ray's cancel raises KeyboardInterrupt only with this
    workdir = os.path.join(tempfile.gettempdir(), workdir)  # an absolute workdir stays as it is
    os.makedirs(workdir, exist_ok=True)
    resume = resume_flags(workdir, code, argv[1])
    afresh = not resume and os.path.isdir(os.path.join(workdir, "runs"))  # an attempt left no checkpoint to resume
    if afresh:
        shutil.rmtree(os.path.join(workdir, "runs"))
    for relative, data in code.items():
        os.makedirs(os.path.dirname(os.path.join(workdir, relative)), exist_ok=True)
        with open(os.path.join(workdir, relative), "wb") as f:
            f.write(data)
    threads = str(cpus)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               PYTHONUNBUFFERED="1", RUN_PARENT_PID=str(os.getpid()),
               PYTHONPATH=os.pathsep.join(p for p in (workdir, os.environ.get("PYTHONPATH")) if p))

    def attempt(extra: list, note: str) -> tuple[int, bytes]:
        """The script's exit code and what it printed; console.log keeps what earlier attempts printed."""
        with open(os.path.join(workdir, "console.log"), "ab") as console:
            console.write(f"experiments.py: {note}\n".encode() if note else b"")
            console.flush()
            begin = console.tell()
            process = subprocess.Popen([sys.executable, "-c", EXEC_WITH_PARENT_DEATH_SIGNAL, *argv[1:], *extra],
                                       cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=console,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while process.poll() is None:
                    time.sleep(0.2)  # polling, not wait(): a cancel's KeyboardInterrupt lands here at once
            except BaseException:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the script ends its iteration with a checkpoint
                try:
                    process.wait(grace_seconds)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                raise
        with open(os.path.join(workdir, "console.log"), "rb") as console:
            console.seek(begin)
            return process.returncode, console.read()

    started = time.time()
    returncode, _ = attempt(resume, f"resuming from {resume[1]}/checkpoint.pt" if resume else
                                 "no checkpoint of these scripts to resume: starting afresh" if afresh else "")
    if resume and returncode == REFUSED_RESUME:  # the script refused the checkpoint: the same flags without it
        shutil.rmtree(os.path.join(workdir, "runs"), ignore_errors=True)
        returncode, _ = attempt([], f"the checkpoint was refused (exit {REFUSED_RESUME}): starting afresh")
    seconds = time.time() - started
    archive = io.BytesIO()
    skip_checkpoint = lambda info: None if info.name.endswith("checkpoint.pt") else info  # noqa: E731 (stays here)
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in sorted(os.listdir(workdir)):
            if name not in {os.path.dirname(relative) for relative in code}:
                tar.add(os.path.join(workdir, name), arcname=name, filter=skip_checkpoint)
    if returncode == 0 or not resume_flags(workdir, code, argv[1]):
        shutil.rmtree(workdir)
    return dict(returncode=returncode, seconds=seconds, node=socket.gethostname(), workdir=workdir,
                resumed=bool(resume), archive=archive.getvalue())


def resume_flags(workdir: str, code: dict, script: str) -> list:
    """`--resume runs/<folder>` when `workdir` holds one run folder with a checkpoint.pt, left by the same
    `script` and env code as in `code` (the files of the earlier attempt are still there); otherwise none."""
    import glob
    import os

    def unchanged(relative: str) -> bool:
        path = os.path.join(workdir, relative)
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return f.read() == code[relative]

    checkpoints = glob.glob(os.path.join(glob.escape(workdir), "runs", "*", "checkpoint.pt"))
    if len(checkpoints) != 1 or not all(unchanged(r) for r in code if r == script or r.startswith("envs")):
        return []
    return ["--resume", os.path.relpath(os.path.dirname(checkpoints[0]), workdir)]


def code_snapshot() -> dict:
    """{relative path: bytes} of algorithms/*.py and envs/**/*.py: what a run needs besides the requirements."""
    files = [*sorted(SCRIPTS.glob("*.py")),
             *sorted(p for p in (ROOT / "envs").rglob("*.py") if "__pycache__" not in p.parts)]
    return {str(path.relative_to(ROOT)): path.read_bytes() for path in files}


def code_of_script(code: dict, script: str) -> dict:
    """The part of a snapshot that a run of `script` executes: algorithms/<script>.py and envs/ (a script imports
    no other file of algorithms/)."""
    return {path: data for path, data in code.items() if path == f"algorithms/{script}.py" or path.startswith("envs/")}


def code_sha256(code: dict, script: str) -> str:
    """The code version of a run of `script` made from a snapshot: the SHA-256 of its script and envs/, as the
    run's finished.json records it (its first 8 digits name it in reports). A change to another script leaves it
    as it is."""
    return hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(code_of_script(code, script).items()))
                          ).hexdigest()


def save_run(run: Run, result: dict, folder: Path, info: dict) -> Path:
    """Unpacks a run's output as folder/<run id>/ (its TensorBoard folder's contents, console.log) and writes the
    marker: finished.json after exit 0, failed.json otherwise, and, for a finished run, its record
    (scalars.csv.gz, from its TensorBoard log). The folder appears complete or not at all."""
    from run_logs import FAILED, MARKER, write_record

    incoming = folder / f".incoming-{run.run_id}"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    if result.get("archive"):
        with tarfile.open(fileobj=io.BytesIO(result["archive"]), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths out of the folder
                tar.extractall(incoming, filter="data")
            else:
                tar.extractall(incoming)
    logs = [p for p in (incoming / "runs").glob("*") if p.is_dir()] if (incoming / "runs").is_dir() else []
    if len(logs) == 1:  # flatten runs/<env>__<run id>__<seed>__<time>/ into the run folder
        for item in logs[0].iterdir():
            item.rename(incoming / item.name)
        shutil.rmtree(incoming / "runs")
        info.update(env_id=logs[0].name.split("__")[0], tensorboard_run_name=logs[0].name)
    info.update(returncode=result.get("returncode"), wall_seconds=round(result.get("seconds", 0.0), 1),
                node=result.get("node"), workdir=result.get("workdir"), resumed=result.get("resumed"),
                error=result.get("error"),
                ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if result.get("returncode") == 0:
        write_record(incoming)
    (incoming / (MARKER if result.get("returncode") == 0 else FAILED)).write_text(json.dumps(info, indent=1) + "\n")
    target = folder / run.run_id
    shutil.rmtree(target, ignore_errors=True)
    os.replace(incoming, target)
    return target


def last_lines(folder: Path, n=6) -> list[str]:
    path = folder / "console.log"
    lines = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    return lines[-n:]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------------------------
def is_finished(folder: Path, run: Run) -> bool:
    from run_logs import MARKER

    return (folder / run.run_id / MARKER).is_file()


def run_experiment(experiment: Experiment, seeds=None, address=None, cpus_per_run=None, logs=LOGS,
                   dry_run=False, methods=None, conditions=None) -> int:
    """Runs every run of `experiment` that has not finished (of `methods` and `conditions` only, if given); returns
    the exit status (0, 1: some failed, 130: interrupted). Bad input raises BadInput."""
    cpus = experiment.cpus_per_run if cpus_per_run is None else cpus_per_run
    if seeds is not None and seeds < 1:
        raise BadInput("--seeds must be at least 1")
    if cpus < 1:
        raise BadInput(f"--cpus-per-run {cpus}: must be at least 1")
    if address is None and cpus > os.cpu_count():
        raise BadInput(f"--cpus-per-run {cpus} is more than this machine's {os.cpu_count()} CPUs")
    for flag, chosen, valid in (("methods", methods, experiment.methods), ("conditions", conditions,
                                                                          experiment.conditions)):
        unknown = sorted(set(chosen or ()) - set(valid))
        if unknown:
            raise BadInput(f"--{flag}: {experiment.name} has no {flag[:-1]} {', '.join(unknown)}; valid: "
                           f"{', '.join(valid)}")
    folder = Path(logs) / experiment.name
    runs = [run for run in experiment.runs(seeds) if (not methods or run.method in methods)
            and (not conditions or run.condition in conditions)]
    todo = [run for run in runs if not is_finished(folder, run)]
    if address is not None and not dry_run:
        address = resolve_address(address)  # checked even when nothing is left to run: a typo is said at once
    code = code_snapshot()
    note_other_code(folder, [run for run in runs if run not in todo], code, bool(todo))
    if dry_run:
        for run in todo:  # the --resume a run would get here (on a cluster, its node would know)
            workdir = Path(work_folder(folder, run, address))
            resume = resume_flags(str(workdir), code, run.argv(cpus)[1]) if address is None else []
            resume = [resume[0], str(workdir / resume[1])] if resume else []  # typed from the repository root
            print(f"OMP_NUM_THREADS={cpus} {shlex.join(run.argv(cpus) + resume)}")
        print(f"# {experiment.name}: {len(todo)} of {len(runs)} runs to run, {len(runs) - len(todo)} finished")
        return 0
    if not todo:
        print(f"{experiment.name}: all {len(runs)} runs finished, nothing to run ({folder}; `--logs DIR` runs "
              f"them again in another folder)")
        return 0
    ray = start_ray(address)
    try:
        return run_on_ray(ray, experiment, todo, cpus, folder, len(runs), address)
    finally:
        ray.shutdown()
        with contextlib.suppress(OSError):
            (folder / ".work").rmdir()  # once no run has a work folder left


def note_other_code(folder: Path, finished: list, code: dict, topping_up: bool) -> None:
    """Says on stderr how many of the finished runs that `run` keeps were made by other code than this checkout's
    snapshot `code`, each compared with the version of its own script (the runs it starts use the current code; a
    report names the versions it pools)."""
    from run_logs import read_marker

    others, current = {}, {}
    for run in finished:
        version = (read_marker(folder / run.run_id) or {}).get("code_sha256", "")
        current.setdefault(run.script, code_sha256(code, run.script))
        if version != current[run.script]:
            others[version[:8] or "unrecorded"] = others.get(version[:8] or "unrecorded", 0) + 1
    if others:
        versions = ", ".join(f"{version} ({count})" for version, count in sorted(others.items()))
        ours = ", ".join(f"{script}.py {version[:8]}" for script, version in sorted(current.items()))
        print(f"note: {sum(others.values())} of the {len(finished)} finished runs kept were made by other code than "
              f"this checkout's ({ours}): {versions}" + ("; the runs to run use this checkout's code" if
                                                         topping_up else ""), file=sys.stderr)


def work_folder(folder: Path, run: Run, address: str | None) -> str:
    """Where a run's task works (kept while the run has a checkpoint to resume): beside the logs on this machine,
    or, on a cluster, under the temporary folder of the node that runs it (relative: execute_run completes it)."""
    if address is None:
        return str((folder / ".work" / run.run_id).resolve())
    return os.path.join("hindsight-runs", run.experiment, run.run_id)


def run_on_ray(ray, experiment, todo, cpus, folder, total, address=None) -> int:
    from tqdm import tqdm

    cpus_of_nodes = node_cpus(ray)
    if cpus > max(cpus_of_nodes, default=0):
        raise BadInput(f"--cpus-per-run {cpus}: no node of the Ray cluster has that many CPUs "
                       f"(largest: {max(cpus_of_nodes, default=0):g})")
    capacity = sum(int(c // cpus) for c in cpus_of_nodes)
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGTERM, signal.SIGHUP):  # stopped or hung up: end as after Ctrl-C (after ray.init,
            signal.signal(stop, interrupt)             # which installs its own handlers)
    # send the task's code, not the name of a module that a worker could not import
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    code = code_snapshot()
    code_ref = ray.put(code)
    common = dict(experiment=experiment.name, cpus_per_run=cpus, git_commit=git_commit())
    task = ray.remote(num_cpus=cpus)(execute_run)
    pending = {task.remote(run.argv(cpus), code_ref, cpus, work_folder(folder, run, address)): run for run in todo}
    print(f"{experiment.name}: {len(todo)} of {total} runs to run, {capacity} at a time; logs in {folder}",
          flush=True)
    done, failed = [], []
    # on a terminal a bar; in a log (not a terminal) one line per run that ends, nothing in between
    terminal = sys.stderr.isatty()
    bar = tqdm(total=len(todo), unit="run", desc=experiment.name, dynamic_ncols=True, mininterval=1.0,
               disable=not terminal)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                run = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # the task itself failed: its worker or node died
                    result = dict(returncode=None, error=str(error).strip().splitlines()[0])
                info = dict(common, code_sha256=code_sha256(code, run.script), run_id=run.run_id, method=run.method,
                            condition=run.condition, seed=run.seed, script=run.script, flags=list(run.flags),
                            config_hash=run.config_hash,
                            command=f"OMP_NUM_THREADS={cpus} {shlex.join(run.argv(cpus))}")
                target = save_run(run, result, folder, info)
                (done if result.get("returncode") == 0 else failed).append((run, target, result))
                if not terminal:
                    print(f"{experiment.name}: {len(done) + len(failed)}/{len(todo)} "
                          f"{'finished' if result.get('returncode') == 0 else 'failed'}: {run.run_id}",
                          file=sys.stderr, flush=True)
            bar.set_postfix(done=len(done), running=min(len(pending), capacity), failed=len(failed), refresh=False)
            bar.update(len(ready))
    except KeyboardInterrupt:
        bar.close()
        cancel(ray, list(pending))
        resumable = "those with a checkpoint on their node" if address else sum(
            bool(resume_flags(work_folder(folder, run, None), code, run.argv(cpus)[1])) for run in pending.values())
        print(f"interrupted: {len(done)} runs finished and kept, {len(failed)} failed, {len(pending)} stopped "
              f"({resumable} will resume from their checkpoint); `run {experiment.name}` again runs the rest",
              file=sys.stderr)
        return 130
    bar.close()
    print(f"{experiment.name}: {len(done)} runs finished, {len(failed)} failed ({folder})")
    for run, target, result in failed:
        why = f"exit {result['returncode']}" if result.get("returncode") is not None else result.get("error")
        print(f"failed: {run.run_id} ({why}): {shlex.join(run.argv(cpus))}", file=sys.stderr)
        for line in last_lines(target):
            print(f"    {line}", file=sys.stderr)
    return 1 if failed else 0


def interrupt(signum, frame):
    raise KeyboardInterrupt


def cancel(ray, refs, grace_seconds=30.0):
    """Cancel the runs still going: first politely (the task sends its script Ctrl-C, which writes a checkpoint,
    and kills it if it has not ended within 20 s), then by killing the workers of those that have not ended after
    `grace_seconds`."""
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:
            pass
    deadline = time.time() + grace_seconds
    remaining = list(refs)
    while remaining and time.time() < deadline:
        try:
            _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
        except Exception:
            break
    for ref in remaining:
        try:
            ray.cancel(ref, force=True)
        except Exception:
            pass
