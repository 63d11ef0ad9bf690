"""Execute the chapters missing from a jupyter-cache, in parallel, in warm kernels.

Step 1 of `make book` (see the Makefile) and of the test suite's builds::

    python code/execute_chapters.py CACHE TIMEOUT NOTEBOOK...

Every chapter's first cell imports the same heavy libraries (PyTorch, SciPy, SymPy,
Matplotlib, Bokeh): about 3 s of a fresh kernel's time, once per chapter. Here one
*kernel zygote* process imports them once; each kernel is then a fork of it (a "warm"
kernel) that starts ipykernel exactly as ``python -m ipykernel_launcher`` would, with
the environment and working folder jupyter_client asks for. Nothing a chapter runs is
shared: each kernel is its own process, forked before any chapter code ran.

Warm kernels are used when there are at least two chapters per core to execute (a clean
build); ``REPARAM_WARM_KERNELS=1`` always uses them, ``=0`` never. The test suite's
second execution is cold, so the determinism test compares a warm execution (the
build's) with a cold one (as a reader's Jupyter runs it): every glued number must agree.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor
from jupyter_cache.executors.basic import (
    ExecutionWorkerLocalMProc,
    JupyterExecutorLocalMproc,
)
from jupyter_cache.executors.utils import single_nb_execution
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

# What the zygote imports before it forks kernels: what the chapters' first cells do.
PRELOAD = (
    "numpy",
    "torch",
    "scipy.integrate",
    "scipy.optimize",
    "scipy.special",
    "scipy.stats",
    "sympy",
    "sympy.stats",
    "mpmath",
    "matplotlib",
    "bokeh.models",
    "bokeh.embed",
    "IPython",
    "ipykernel.kernelapp",
    "myst_nb",
)
# As ipykernel sets it at start (when unset): Matplotlib reads it when imported, so it
# must be set before the zygote imports Matplotlib, or figures would not be shown.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
ZYGOTE_ENV = "REPARAM_KERNEL_ZYGOTE"
# The zygote imports for about 4.5 s before the first kernel starts, where ordinary
# kernels import (about 3 s each) on all cores at once: warm kernels save time from
# about 1.5 notebooks per core on. Below 2 per core (a code edit of one chapter, the
# tests' small books), ordinary kernels are used.
WARM_FROM_PER_CORE = 2


# --- the zygote: imports once, forks one kernel per request --------------------------


def _serve(socket_path: str) -> None:
    """Import PRELOAD, then fork a kernel for each request on ``socket_path``."""
    if not os.environ.get("MPLBACKEND"):  # as ipykernel: unset or empty
        os.environ["MPLBACKEND"] = INLINE_BACKEND
    _preload_quietly()
    # Exited kernels are reaped by the system (no zombies); kernels restore the default.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    parent = os.getppid()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(8)
    server.settimeout(1.0)
    print("ready", flush=True)  # the parent waits for this line, then stops reading:
    os.dup2(2, 1)  # so kernels' own stdout goes where the parent's stderr goes
    while True:
        try:
            connection, _ = server.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the executor died without stopping us
                os._exit(0)
            continue
        try:
            _fork_for(connection, server)
        except Exception:  # one bad request (a worker killed mid-way) stops no other
            traceback.print_exc()
        finally:
            connection.close()


def _preload_quietly() -> None:
    """Import PRELOAD; exit if that printed anything or warned.

    In an ordinary kernel, such output would appear in a chapter's first cell (and
    fail the strict build); here it would not, so the executor uses ordinary kernels.
    """
    import contextlib
    import importlib
    import io
    import warnings

    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            for name in PRELOAD:
                importlib.import_module(name)
    if printed.getvalue() or caught:
        noise = printed.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n"
                                             for w in caught)
        print(f"importing {PRELOAD} printed or warned:\n{noise}", file=sys.stderr)
        sys.exit(3)


def _fork_for(connection: socket.socket, server: socket.socket) -> None:
    connection.settimeout(30)
    request = json.loads(_read_all(connection))
    pid = os.fork()
    if pid == 0:
        server.close()
        connection.close()
        _become_kernel(request["cmd"], request["env"], request["cwd"])
    connection.sendall(str(pid).encode())


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _become_kernel(cmd: list[str], env: dict[str, str], cwd: str) -> None:
    """In the forked child: start the kernel that ``cmd`` names, then exit."""
    code = 1
    try:
        os.setsid()  # its own process group, as jupyter_client launches kernels
        for name in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_DFL)
        os.chdir(cwd)
        import multiprocessing.process

        # Recorded when multiprocessing was imported (in the zygote's folder).
        multiprocessing.process.ORIGINAL_DIR = cwd
        _reseed_global_generators()
        # As jupyter_client's launcher: the kernel knows its parent (JPY_PARENT_PID,
        # which ipykernel read when the zygote imported it, so it is also passed as an
        # option). The kernel exits if the zygote goes away, and the zygote exits if the
        # executor goes away.
        env = {k: v for k, v in env.items() if k != ZYGOTE_ENV}
        env["JPY_PARENT_PID"] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        parent = f"--IPKernelApp.parent_handle={os.getppid()}"
        # As ipykernel_launcher: the script's folder is not on the path (IPython adds
        # the working folder back when the kernel starts).
        here = Path(__file__).resolve().parent
        if sys.path and Path(sys.path[0] or ".").resolve() == here:
            del sys.path[0]
        import ipykernel_launcher  # (its main part runs only as __main__)

        sys.argv = [ipykernel_launcher.__file__, *cmd[3:]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=[*cmd[3:], parent])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(bool(exit_.code))
    except BaseException:
        traceback.print_exc()  # to the build log: nbclient only sees a dead kernel
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reseed_global_generators() -> None:
    """Fresh entropy for the global generators a fork would share with its siblings
    (Python's own ``random`` reseeds itself at fork; NumPy's and SymPy's do not)."""
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "sympy.core.random" in sys.modules:
        module = sys.modules["sympy.core.random"]
        for name in ("rng", "_assumptions_rng"):
            if hasattr(module, name):
                getattr(module, name).seed()


def is_ipykernel(cmd: list[str]) -> bool:
    return len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]


class ZygoteUnavailable(RuntimeError):
    """The zygote did not start; the executor then uses ordinary kernels."""


class KernelZygote:
    """The zygote process: start it, ask it for kernels, stop it."""

    START_TIMEOUT = 120  # seconds to import PRELOAD

    def __init__(self) -> None:
        import select

        self.folder = tempfile.mkdtemp(prefix="reparam-zygote-")
        self.socket_path = os.path.join(self.folder, "socket")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--zygote", self.socket_path],
            stdout=subprocess.PIPE,
            text=True,
        )
        pipe = self.process.stdout
        readable, _, _ = select.select([pipe], [], [], self.START_TIMEOUT)
        line = self.process.stdout.readline().strip() if readable else ""
        self.process.stdout.close()
        if line != "ready":
            self.stop()
            raise ZygoteUnavailable(
                f"the kernel zygote did not start (exit {self.process.returncode}; "
                "its error is above)"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        Path(self.socket_path).unlink(missing_ok=True)
        os.rmdir(self.folder)

    def __enter__(self):
        os.environ[ZYGOTE_ENV] = self.socket_path
        return self

    def __exit__(self, *exc) -> None:
        os.environ.pop(ZYGOTE_ENV, None)
        self.stop()


def fork_kernel(socket_path: str, cmd: list[str], env: dict, cwd: str) -> int:
    """Ask the zygote at ``socket_path`` for a kernel; returns its process id."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(socket_path)
        client.sendall(json.dumps({"cmd": cmd, "env": env, "cwd": cwd}).encode())
        client.shutdown(socket.SHUT_WR)
        return int(_read_all(client))


# --- the client side: jupyter_client and jupyter-cache plumbing ----------------------


class ForkedKernelProcess:
    """What jupyter_client's LocalProvisioner needs of a Popen, for a forked kernel.

    The kernel is the zygote's child, not ours: it is signalled by process id, and it
    is alive while that id exists (the zygote does not leave zombies). Its exit code
    is not known here; 0 is reported once it is gone.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return 0
        return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return 0

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmProvisioner(LocalProvisioner):
    """Launches ipykernel kernels as forks of the zygote (when one is running)."""

    async def launch_kernel(self, cmd, **kwargs):
        socket_path = os.environ.get(ZYGOTE_ENV)
        if not socket_path or not is_ipykernel(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or Path.cwd())
        pid = fork_kernel(socket_path, cmd, env, cwd)
        self.process = ForkedKernelProcess(pid)
        self.pid = self.pgid = pid
        self.cwd = cwd
        return self.connection_info


class WarmKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, with the WarmProvisioner."""

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(
                uuid.uuid4()
            )
            self.provisioner = WarmProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )
        return await super()._async_pre_start_kernel(**kw)


class WarmWorker(ExecutionWorkerLocalMProc):
    """jupyter-cache's parallel worker, executing with the WarmKernelManager."""

    @staticmethod
    def execute(project_nb, data):
        return single_nb_execution(
            project_nb.nb,
            cwd=str(Path(project_nb.uri).parent),
            timeout=data.timeout,
            allow_errors=data.allow_errors,
            kernel_manager_class=WarmKernelManager,
        )


class WarmExecutor(JupyterExecutorLocalMproc):
    """jupyter-cache's local-parallel executor, with warm kernels."""

    _EXECUTION_WORKER = WarmWorker


def wants_warm_kernels(to_execute: int, cores: int) -> bool:
    """Whether warm kernels pay for the zygote: from WARM_FROM_PER_CORE per core."""
    return to_execute >= WARM_FROM_PER_CORE * cores


def pythonpath_allows_warm_kernels(pythonpath: str | None) -> bool:
    """False if an entry is relative (or empty): a Python process makes it absolute
    against the folder it starts in, the zygote's, not each kernel's."""
    return pythonpath is None or all(map(os.path.isabs, pythonpath.split(os.pathsep)))


def execute_chapters(cache_path: str, timeout: int, notebooks: list[str],
                     warm: bool | None = None):
    """Execute the ``notebooks`` missing from the cache, in parallel; returns the
    result (``succeeded``, ``excepted``, ``errored``), or None if none was missing.

    The cache's project is exactly ``notebooks``, in this order (the pool hands them
    to the kernels in this order). A notebook that fails is not cached. ``warm``: in
    warm kernels (True), ordinary ones (False), or warm only when there are at least
    WARM_FROM_PER_CORE notebooks per core to execute (None).
    """
    cache = get_cache(cache_path)
    for record in cache.list_project_records():
        cache.remove_nb_from_project(record.pk)
    for path in notebooks:
        cache.add_nb_to_project(path)
    if not cache.list_unexecuted():
        return None
    logger = logging.getLogger("execute-chapters")
    logger.setLevel(logging.WARNING)
    if warm is None:
        # os.cpu_count(): as many processes as the executor's pool starts.
        warm = wants_warm_kernels(len(cache.list_unexecuted()), os.cpu_count() or 1)
    warm = warm and pythonpath_allows_warm_kernels(os.environ.get("PYTHONPATH"))
    zygote = None
    if warm:
        try:
            zygote = KernelZygote()
        except ZygoteUnavailable as error:
            print(f"{error}: ordinary kernels are used", file=sys.stderr)
    count = len(cache.list_unexecuted())
    kind = "warm" if zygote else "ordinary"
    print(f"execute-chapters: {count} notebook(s) in {kind} kernels", file=sys.stderr)
    if zygote is None:
        executor = load_executor("local-parallel", cache, logger=logger)
        return executor.run_and_cache(timeout=timeout)
    with zygote:
        return WarmExecutor(cache, logger=logger).run_and_cache(timeout=timeout)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--zygote"]:
        _serve(argv[1])
        return 0
    cache_path, timeout, *notebooks = argv
    warm = {"0": False, "1": True}.get(os.environ.get("REPARAM_WARM_KERNELS", ""))
    result = execute_chapters(cache_path, int(timeout), notebooks, warm=warm)
    if result is not None:
        for uri in result.excepted + result.errored:
            print(f"failed, not cached: {uri}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
