"""The cluster path of benchmarks/experiments.py, shown on two Ray nodes of one machine (run as root, Linux):

    . .venv/bin/activate && python benchmarks/two_node_cluster.py     # as root; about a minute on 2 cores
    python benchmarks/two_node_cluster.py --subnet 192.168.77.0/30    # another /30, if the default collides

It creates two network namespaces joined by a veth pair with a private /30 of their own (refused if it overlaps an
address or route of this machine), starts a Ray head in the first with no CPUs for tasks and a worker node in the
second (with Ray's token authentication, on a token of their own), and runs a tiny experiment (2 methods x 2 seeds of
algorithms/ppo_her.py on PredatorPrey, 2,048 env steps each) from the head's namespace with `experiments.py run NAME
--address HEAD_IP:PORT --logs DIR`. It then checks that every run executed on the worker and that each run folder
came home to DIR. A run's finished.json records its node as the host name the task saw and its work folder: each node
runs in a UTS namespace of its own with a host name of its own, and a temporary folder (TMPDIR) of its own, so both
name the worker. The worker cannot see DIR: it has a mount namespace of its own in which the head's folder is hidden
under an empty tmpfs. Otherwise it shares this machine's filesystem: the worker runs the same Python (.venv) and
could read the repository, which the runner does not need there (it sends the scripts with each task). Finally it
stops exactly what it started: every process inside its two namespaces (never a bare `ray stop`, which would stop
other Ray instances of this machine), then the namespaces and their veth pair, also after a failure, Ctrl-C, SIGTERM
or SIGHUP. Every process it starts lives in one of the two namespaces, whose only route leads to the other. Prints a
short summary; exits 0 when everything checked out, 1 otherwise (2: refused to start).
"""
import argparse
import ctypes
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_PY = ROOT / "benchmarks" / "experiments.py"
EXPERIMENT = "two-node-tiny"
METHODS = {"her": "ppo_her", "ppo": "ppo_her --no-her"}
SEEDS = 2
BUDGET = 2048
FLAGS = "--num-steps 512 --hidden-size 32"  # 4 PPO iterations of 512 env steps: a few seconds per run
# The extra definitions file: the tiny experiment, written as the tests write theirs.
DEFINITIONS = f'''
from experiments import Experiment

EXPERIMENTS = [
    Experiment(name={EXPERIMENT!r}, figure="benchmarks/two_node_cluster.py: a tiny experiment on two Ray nodes",
               methods={METHODS!r}, conditions={{"rr": "--prey random --spawn random"}},
               flags={FLAGS!r}, budget={BUDGET}, seeds={SEEDS}),
]
'''
# In every process we start: no usage report (there is no way out of the namespaces anyway).
RAY_ENV = dict(RAY_USAGE_STATS_ENABLED="0")


class Refused(Exception):
    """A reason not to start (exit status 2)."""


def interrupt(signum, frame):
    raise KeyboardInterrupt


def sh(*argv, check=True, **kwargs) -> subprocess.CompletedProcess:
    """Runs a short command; its output is returned, and shown if it fails."""
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if check and out.returncode != 0:
        raise RuntimeError(f"{shlex.join(str(a) for a in argv)} exited {out.returncode}: "
                           f"{(out.stderr or out.stdout).strip()}")
    return out


def machine_networks() -> list:
    """Every address (as its network) and every route of this machine's own network namespace."""
    networks = []
    for line in sh("ip", "-o", "addr").stdout.splitlines():
        fields = line.split()
        family = fields[2]
        if family in ("inet", "inet6"):
            networks.append(ipaddress.ip_interface(fields[3]).network)
    route_types = ("unicast", "local", "broadcast", "multicast", "unreachable", "prohibit", "blackhole", "anycast")
    for family in ("-4", "-6"):
        for line in sh("ip", family, "route", "show", "table", "all").stdout.splitlines():
            words = line.split()
            target = words[1] if words[0] in route_types else words[0]
            if target == "default":
                continue  # the default route covers everything: overlapping it is no collision
            try:
                networks.append(ipaddress.ip_network(target, strict=False))
            except ValueError:
                pass  # not an address (a route of another kind)
    return networks


def choose_subnet(text: str) -> ipaddress.IPv4Network:
    """The /30 of the veth pair: given, or one of 10.234.0.0/16 picked by our pid; refused if it overlaps an address
    or route of this machine."""
    if text == "auto":
        pid = os.getpid()
        text = f"10.234.{pid % 256}.{(pid // 256) % 64 * 4}/30"
    subnet = ipaddress.ip_network(text)
    if subnet.prefixlen != 30 or not subnet.is_private:
        raise Refused(f"--subnet {text}: expected a private /30 (two addresses)")
    for network in machine_networks():
        if network.version == subnet.version and network.overlaps(subnet):
            raise Refused(f"--subnet {subnet} overlaps {network}, which this machine already uses; pick another")
    return subnet


def processes_in(namespace: str) -> list[int]:
    """The pids inside a network namespace: only processes we started can be there (its name is ours)."""
    out = sh("ip", "netns", "pids", namespace, check=False)
    return [int(p) for p in out.stdout.split() if p.strip().isdigit()]


def become_subreaper():
    """Ray's daemons outlive `ray start`, their parent: as their subreaper this process inherits them, and reaps them
    when it stops them (else they stay zombies until the machine's init collects them)."""
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # without it init reaps them, later


def reap():
    """Collects every child that has ended (called only between commands: subprocess waits for its own)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop_namespace(namespace: str, grace_seconds: float = 10.0) -> int:
    """Ends every process in `namespace` (SIGTERM, then SIGKILL after `grace_seconds`) and deletes it; returns how
    many processes were there. Never touches a process outside it."""
    pids = processes_in(namespace)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace_seconds
    while processes_in(namespace) and time.time() < deadline:
        reap()
        time.sleep(0.2)
    for _ in range(20):
        left = processes_in(namespace)
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        reap()
    reap()
    sh("ip", "netns", "del", namespace, check=False)
    return len(pids)


def namespace_inode(namespace: str) -> int:
    """The inode that identifies a named network namespace (as /proc/PID/ns/net shows it)."""
    return os.stat(f"/run/netns/{namespace}").st_ino


def processes_naming(folder: Path) -> dict:
    """{pid: network namespace inode} of every process whose command line or environment names `folder` (Ray's
    processes get our --temp-dir and TMPDIR), whichever namespace it is in."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            named = str(folder).encode() in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            if named:
                found[int(entry.name)] = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            pass  # ended meanwhile, or a zombie
    return found


def in_namespace(namespace: str, argv: list, env: dict, hostname: str | None = None, hide: Path | None = None) -> list:
    """The command line that runs `argv` inside `namespace` with `env` added; with `hostname`, in a UTS namespace of
    its own with that host name (what a run's finished.json records as its node); with `hide`, in a mount namespace
    of its own where the folder `hide` is covered by an empty tmpfs (the worker cannot see the head's files)."""
    script = []
    if hide is not None:
        script.append(f"mount -t tmpfs -o size=1m two-node-hidden {shlex.quote(str(hide))}")
    if hostname is not None:
        script.append(f"hostname {shlex.quote(hostname)}")
    script.append("exec " + shlex.join(str(a) for a in argv))
    unshare = ["unshare", "--uts"] if hostname is not None else []
    if hide is not None:
        unshare = [*(unshare or ["unshare"]), "--mount", "--propagation", "private"]
    settings = [f"{key}={value}" for key, value in env.items()]
    return ["ip", "netns", "exec", namespace, "env", *settings, *unshare, "sh", "-c", " && ".join(script)]


def ray_nodes(namespace: str, address: str, env: dict) -> list[dict]:
    """The cluster's nodes as the head sees them (a small driver of its own in the head's namespace)."""
    query = ("import json, logging, ray\n"
             f"ray.init(address={address!r}, logging_level=logging.ERROR, log_to_driver=False)\n"
             "nodes = [dict(id=n['NodeID'], ip=n['NodeManagerAddress'], alive=n['Alive'],"
             " cpus=n['Resources'].get('CPU', 0.0)) for n in ray.nodes()]\n"
             "print(json.dumps(nodes))\n")
    out = sh(*in_namespace(namespace, [sys.executable, "-c", query], env), cwd="/", timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def definitions_flag() -> str:
    """The `run` flag that takes an extra definitions file, read from the runner's --help (the runner is being
    split into modules: this checks its command line rather than importing it)."""
    text = sh(sys.executable, EXPERIMENTS_PY, "run", "--help", cwd=ROOT).stdout
    if "--definitions" not in text or "--address" not in text or "--logs" not in text:
        raise Refused(f"`experiments.py run --help` no longer offers --definitions, --address and --logs:\n{text}")
    return "--definitions"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnet", default="auto",
                        help="the private /30 of the veth pair (default: one of 10.234.0.0/16 picked by pid)")
    parser.add_argument("--port", type=int, default=6379, help="the head's GCS port, inside its namespace")
    parser.add_argument("--worker-cpus", type=int, default=2, help="CPUs of the worker node (runs at a time)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, Ray's temp dirs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: network namespaces need root", file=sys.stderr)
        return 2
    started = time.time()
    pid = os.getpid()
    head_ns = f"twonode-head-{pid}"
    worker_ns = f"twonode-worker-{pid}"
    head_host = head_ns  # the host name of the head's UTS namespace
    worker_host = worker_ns  # the worker's: what a run's finished.json records as its node
    scratch = Path(f"/tmp/twonode-{pid}")  # short: Ray's socket paths must fit in 107 characters
    head_dir = scratch / "head"  # the head's side: Ray's temp dir, the definitions, the logs; hidden from the worker
    worker_dir = scratch / "worker"  # the worker's side: Ray's temp dir and the runs' temporary folders
    logs = head_dir / "logs"
    definitions = head_dir / "definitions.py"
    checks = []  # (what, passed, detail)
    created = []  # the namespaces that exist, in creation order
    subnet = None
    head_ip = worker_ip = address = flag = None
    nodes = []
    runner = None
    run_seconds = None
    placements = []  # (run id, node, workdir, on the worker, folder complete, seconds, files)
    become_subreaper()
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # Ctrl-C, stopped or hung up: clean up and end
        signal.signal(stop, interrupt)  # (SIGINT too: a shell starts a background job with it ignored)
    try:
        flag = definitions_flag()
        subnet = choose_subnet(args.subnet)
        head_ip, worker_ip = [str(a) for a in subnet.hosts()]
        address = f"{head_ip}:{args.port}"
        for folder in (head_dir / "ray", head_dir / "tmp", worker_dir / "ray", worker_dir / "tmp"):
            folder.mkdir(parents=True)
        definitions.write_text(DEFINITIONS)
        # A token of this cluster's own for every node and driver: Ray would otherwise switch token authentication on
        # or off by whether ~/.ray/auth_token exists, which other Ray users of this machine create.
        token = scratch / "token"
        token.touch(mode=0o600)
        token.write_text(secrets.token_hex(32))
        auth = dict(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token)
        head_env = dict(RAY_ENV, **auth, TMPDIR=head_dir / "tmp", RAY_TMPDIR=head_dir / "tmp")
        worker_env = dict(RAY_ENV, **auth, TMPDIR=worker_dir / "tmp", RAY_TMPDIR=worker_dir / "tmp")

        # The network: two namespaces, a veth pair between them, nothing else (no route out of either).
        for namespace in (head_ns, worker_ns):
            sh("ip", "netns", "add", namespace)
            created.append(namespace)
        head_link = f"tnh{pid}"[:15]  # interface names have at most 15 characters
        worker_link = f"tnw{pid}"[:15]
        sh("ip", "link", "add", head_link, "netns", head_ns, "type", "veth", "peer", "name", worker_link,
           "netns", worker_ns)
        for namespace, link, ip in ((head_ns, head_link, head_ip), (worker_ns, worker_link, worker_ip)):
            sh("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{ip}/{subnet.prefixlen}", "dev", link)
            sh("ip", "netns", "exec", namespace, "ip", "link", "set", link, "up")
        routes = [sh("ip", "netns", "exec", n, "ip", "route", "show", "table", "all").stdout for n in created]
        direct = sorted({line.split()[0] for n in created for line in sh("ip", "netns", "exec", n, "ip", "route")
                         .stdout.splitlines()})
        checks.append(("no route out of either namespace", not any("default" in r for r in routes),
                       f"their only routes lead to {', '.join(direct)}"))

        # The head: no CPUs, so no task can run there; its own temp dir and host name.
        ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--disable-usage-stats"]
        head = [*ray, "--head", "--port", args.port, "--node-ip-address", head_ip, "--num-cpus", "0",
                "--include-dashboard", "false", "--temp-dir", head_dir / "ray"]
        sh(*in_namespace(head_ns, head, head_env, hostname=head_host), cwd="/", timeout=180)
        # The worker: joins the head's address from its own namespace; the head's folder is hidden from it.
        worker = [*ray, "--address", address, "--node-ip-address", worker_ip, "--num-cpus", args.worker_cpus,
                  "--temp-dir", worker_dir / "ray"]
        sh(*in_namespace(worker_ns, worker, worker_env, hostname=worker_host, hide=head_dir), cwd="/", timeout=180)
        deadline = time.time() + 60
        while time.time() < deadline:
            nodes = [n for n in ray_nodes(head_ns, address, head_env) if n["alive"]]
            if len(nodes) == 2:
                break
            time.sleep(2)
        cpus = {n["ip"]: n["cpus"] for n in nodes}
        checks.append(("two nodes alive, the head with 0 CPUs", cpus == {head_ip: 0, worker_ip: args.worker_cpus},
                       ", ".join(f"{n['ip']} = Ray node {n['id'][:12]}, {n['cpus']:g} CPU" for n in nodes)))

        # The experiment, driven from the head's namespace through the runner's command line only.
        command = [sys.executable, EXPERIMENTS_PY, "run", EXPERIMENT, flag, definitions, "--address", address,
                   "--logs", logs]
        run_started = time.time()
        runner = subprocess.run(in_namespace(head_ns, command, head_env), cwd=ROOT, capture_output=True, text=True)
        run_seconds = time.time() - run_started
        checks.append(("runner exit status 0", runner.returncode == 0, f"exit {runner.returncode}"))

        # Where the runs ran, and what came home.
        markers = sorted((logs / EXPERIMENT).glob("*/finished.json"))
        expected = len(METHODS) * SEEDS
        checks.append(("every run finished and its folder came home to --logs", len(markers) == expected,
                       f"{len(markers)} of {expected} finished.json under {logs / EXPERIMENT}"))
        worker_tmp = str(worker_dir / "tmp") + "/"
        for marker in markers:
            info = json.loads(marker.read_text())
            folder = marker.parent
            on_worker = info.get("node") == worker_host and str(info.get("workdir")).startswith(worker_tmp)
            # the record: scalars.csv.gz where the runner writes one (issue 34), else the TensorBoard event file
            files = sorted("events.out.tfevents.*" if f.name.startswith("events.out.tfevents.") else f.name
                           for f in folder.iterdir())
            record = "scalars.csv.gz" in files or "events.out.tfevents.*" in files
            complete = "console.log" in files and record
            placements.append((folder.name, info.get("node"), info.get("workdir"), on_worker, complete,
                               info.get("wall_seconds"), files))
        on_worker = sum(p[3] for p in placements)
        checks.append(("every run executed on the worker (node and workdir of finished.json)",
                       placements and on_worker == len(placements), f"{on_worker} of {len(placements)}"))
        complete = sum(p[4] for p in placements)
        checks.append(("every run folder holds console.log and its record (scalars.csv.gz or event file)",
                       placements and complete == len(placements), f"{complete} of {len(placements)}"))
        # The worker's view of the head's folder is empty: the records travelled through Ray, not a shared disk.
        worker_pids = processes_in(worker_ns)
        seen = ["(no worker process)"]
        if worker_pids:
            seen = sh("nsenter", "--target", worker_pids[0], "--mount", "ls", "-A", head_dir).stdout.split()
        checks.append(("the head's folder (logs included) is invisible from the worker", seen == [],
                       f"the worker sees {head_dir} as {seen or 'empty'}"))
        leftovers = [str(p) for p in (worker_dir / "tmp").glob("hindsight-runs/*/*")]
        checks.append(("the worker deleted the runs' work folders", leftovers == [], ", ".join(leftovers) or
                       "none left"))
        # Every process that names our folders (Ray's, the runs') lives inside one of our namespaces.
        ours = {namespace_inode(n) for n in created}
        outside = [p for p, inode in processes_naming(scratch).items() if inode not in ours]
        checks.append(("every process of the cluster is inside the two namespaces", outside == [],
                       f"outside: {outside}" if outside else f"{len(processes_naming(scratch))} processes, all inside"))
    except Refused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        checks.append(("not interrupted", False, "Ctrl-C, SIGTERM or SIGHUP: stopped early"))
    except Exception as error:  # the benchmark's own failure: cleaned up below, reported as FAIL
        checks.append(("no error", False, f"{type(error).__name__}: {error}"))
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the cleanup runs to its end
            signal.signal(stop, signal.SIG_IGN)
        stopped = {namespace: stop_namespace(namespace) for namespace in reversed(created)}
        left = [n for n in created if n in sh("ip", "netns", "list").stdout.split()]
        survivors = list(processes_naming(scratch))
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if created:
        detail = ", ".join(f"{n}: {k} processes stopped" for n, k in stopped.items())
        checks.append(("every process and namespace it created is gone", not left and not survivors,
                       detail + (f"; left: {left} {survivors}" if left or survivors else "")))

    ok = all(passed for _, passed, _ in checks)
    print(f"two-node Ray cluster on one machine: veth pair in {subnet}")
    if created:
        print(f"  head    {address:<21} namespace {head_ns}, --num-cpus 0, files {head_dir}")
        print(f"  worker  {worker_ip:<21} namespace {worker_ns}, --num-cpus {args.worker_cpus}, files {worker_dir}")
        print(f"  driver  (head's namespace) python benchmarks/experiments.py run {EXPERIMENT} {flag} "
              f"{definitions} --address {address} --logs {logs}")
    for line in (runner.stdout.splitlines() if runner else []):
        print(f"  runner| {line}")
    for line in (runner.stderr.strip().splitlines()[-15:] if runner and runner.returncode != 0 else []):
        print(f"  runner stderr| {line}")
    for name, node, workdir, on_worker, complete, seconds, files in placements:
        print(f"  run {name}: {seconds} s on {node}{'' if on_worker else ' (NOT THE WORKER)'}, work folder "
              f"{workdir}; came home: {', '.join(files)}{'' if complete else ' (INCOMPLETE)'}")
    for what, passed, detail in checks:
        print(f"  {'ok  ' if passed else 'FAIL'} {what}: {detail}")
    print(f"  note: the worker shares this machine's filesystem except the head's folder; it runs the same Python "
          f"({sys.executable}); the runner sends it the scripts with each task and the run folders come back "
          f"through Ray")
    runner_time = f", of which the runner {run_seconds:.1f} s" if run_seconds is not None else ""
    print(f"wall time {time.time() - started:.1f} s{runner_time}: {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
