"""Test-wide settings: no network, no screen, and a private workspace per test session;
what lets the suite run on several pytest-xdist workers (packaging/bootstrap.sh test
passes -n): daemon tests kept on one worker, trained fixtures made once for all workers."""

import gc
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

# Set before anything imports Qt or datasets: hub names must fail at once, not after ~47 s.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: an engine of each with two OpenMP threads oversubscribes
    # the machine (threads spin for one another and every test ran ~2x slower). One thread
    # each, set before torch is imported here or by the engine server; the test SSH server
    # passes it on to the target's engines (tests/engine/remote/conftest.py), so runs there
    # add up their floats as the runs here do.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
# Tests never write to the person's own workspace.
os.environ["STAGELAB_HOME"] = tempfile.mkdtemp(prefix="stagelab-test-home-")

# Tests that start the session's sshd or Slurm daemons run on one worker: the daemons
# start once, and never twice on ports picked by two workers at the same moment.
DAEMON_FIXTURES = {"sshd", "slurm_cluster"}


def worker_group(item: pytest.Item) -> str | None:
    """The xdist group of a test: the daemons' group, else its module's where it uses a
    module-scoped fixture (made once on one worker rather than once on each)."""
    names = set(getattr(item, "fixturenames", ()))
    if DAEMON_FIXTURES & names:
        return "daemons"
    info = getattr(item, "_fixtureinfo", None)
    for name in names:
        defs = info.name2fixturedefs.get(name) if info is not None else None
        if defs and defs[-1].scope in ("module", "class"):
            return item.nodeid.split("::")[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = worker_group(item)
        if group and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
            if os.environ.get("PYTEST_XDIST_WORKER") and hasattr(item, "_id"):
                # xdist 3.8 groups by a "@group" suffix it writes to item._nodeid, which
                # pytest 9.2 no longer reads (the id is item._id): write it where it counts.
                from _pytest.nodeid import NodeId

                item._id = NodeId.parse(f"{item.nodeid}@{group}")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Modules with slow tests first (each kept in one piece, in its order): the workers
        # hand out tests in this order, and a slow one handed out last is a lone tail.
        slow = {i.module for i in items if i.get_closest_marker("slow") and hasattr(i, "module")}
        items.sort(key=lambda i: getattr(i, "module", None) not in slow)


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]
) -> dict:
    """What `build(folder)` returns (JSON), built once for the whole run: under xdist the
    first worker to ask builds it in the run's shared temporary folder while the others
    wait on a file lock, then every worker reads the same result."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    folder, done = root / name, root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(json.dumps(build(folder)))
    return json.loads(done.read_text())


def pytest_collection_finish(session: pytest.Session) -> None:
    # What the test modules imported (torch, transformers, Qt …) lives all session: frozen,
    # the collector's full passes never walk it again, nor the last one at exit (~1.5 s).
    gc.freeze()


@pytest.fixture(scope="session")
def tiny_outputs(tmp_path_factory: pytest.TempPathFactory):
    """tests/tiny_outputs.py's four trained stage outputs, trained once per test run."""
    from tests.tiny_outputs import TinyOutputs, train_tiny_outputs

    def build(folder: Path) -> dict:
        made = train_tiny_outputs(folder)
        folders = {name: str(path) for name, path in made.folders.items()}
        return {"workspace": str(made.workspace), "run_id": made.run_id, "folders": folders}

    made = made_once(tmp_path_factory, "tiny-outputs", build)
    folders = {name: Path(path) for name, path in made["folders"].items()}
    return TinyOutputs(Path(made["workspace"]), made["run_id"], folders)


@pytest.fixture(scope="session", autouse=True)
def engine_server(tmp_path_factory: pytest.TempPathFactory):
    """An engine server for the whole run (engine/process/server.py; under xdist, one per
    worker): every run a test starts (in this process, through the CLI or the window),
    one process or several, is forked ready to train instead of spending ~6 s of CPU per
    process importing torch and transformers. STAGELAB_TEST_ENGINE_SERVER=0 turns it off:
    then no process the tests start (the window, the sweep and queue runners) keeps one
    either, and every engine starts as a process of its own. The server's own tests start
    theirs (tests/engine/process/test_engine_server.py); test_distributed.py trains one
    run under torchrun whichever way the session runs."""
    from engine.launch.served import OFF, SERVER_ENV, start_server

    if os.environ.get("STAGELAB_TEST_ENGINE_SERVER", "1") == "0":
        os.environ.setdefault(SERVER_ENV, OFF)
        yield None
        return

    folder = Path(tempfile.mkdtemp(prefix="stagelab-server-"))  # short: a socket path is
    socket_path = folder / "engine.sock"  # limited to 107 bytes
    server = start_server(socket_path, folder / "server.log")
    # Ready before the first test: a run started sooner would import torch on its own
    # (CPU spent twice) and tests that check a run was forked would see it was not.
    if server.stdout.readline().strip() != b"ready":
        pytest.fail(f"the engine server did not start: {(folder / 'server.log').read_text()}")
    os.environ[SERVER_ENV] = str(socket_path)
    yield socket_path
    os.environ.pop(SERVER_ENV, None)
    server.terminate()  # engines it forked, in sessions of their own, are not touched
    server.wait()
    shutil.rmtree(folder, ignore_errors=True)


def _machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (/proc/stat): with one pytest
    process on an otherwise idle machine, its rise over a test is what the test cost,
    engines, daemons and other subprocesses included (which no rusage of this process sees)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """With STAGELAB_TEST_CPU_LOG=FILE, one JSON line per test: its wall seconds and the
    machine's CPU seconds over it (bench/suite_profile.py sums them): where the suite's CPU
    goes, and which tests only wait."""
    log = os.environ.get("STAGELAB_TEST_CPU_LOG")
    if not log:
        return (yield)
    import time

    start, wall, cpu = time.time(), time.monotonic(), _machine_cpu_seconds()
    own = time.process_time()
    try:
        return (yield)
    finally:
        line = {
            "test": item.nodeid,
            # This pytest process's own CPU (in-process training, Qt), without its children.
            "own": round(time.process_time() - own, 3),
            # When and where: bench/suite_profile.py --timeline shows each worker's gaps.
            "start": round(start, 3),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "wall": round(time.monotonic() - wall, 3),
            "cpu": round(_machine_cpu_seconds() - cpu, 3),
        }
        with open(log, "a") as out:
            out.write(json.dumps(line) + "\n")
