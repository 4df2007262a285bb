"""The supervisor: runs a framework's instances in worker processes and survives them.

Each unit of work (one framework, a list of instance indices) runs in a worker process
(:mod:`xentcheck.harness.worker`) that reports on a pipe which instance and API call it is
on. When the worker dies (a segfault, an abort, ``os._exit``, the OOM killer) the
supervisor writes a ``crash`` row for the instance it was running, naming the signal or
exit status and the worker's last output lines, and starts a fresh worker from the next
instance. An instance that runs past ``timeout`` seconds becomes a ``timeout`` row and its
worker is killed and replaced. A worker that reports a poisoned GPU context exits after
recording its instance and is replaced the same way. A framework whose worker dies or
hangs before its first instance (an import or setup that fails) is one ``crash`` row,
however many shards it has: its other units stop, and a sibling worker that fails the
same way adds nothing.

Parts: every worker process appends to a part file of its own; each instance's rows are
written together and closed by a ``{"kind": "done"}`` marker, so :func:`read_parts`
knows exactly which instances finished (rows after the last marker, from a worker killed
mid-instance, are dropped and the instance is redone on ``--resume``).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import pickle
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xentcheck.harness.cases import Instance
from xentcheck.harness.goldens import GoldenCache
from xentcheck.harness.progress import Progress
from xentcheck.harness.results import ResultWriter, read_lines
from xentcheck.harness.worker import (
    POISONED_EXIT,
    Row,
    base_row,
    golden_for,
    no_comparison,
    rounded_inputs,
)

#: seconds a worker may take to import its framework and set up before its first instance
STARTUP_TIMEOUT = 600.0


@dataclass
class Unit:
    """One worker's share of a run: a framework (name or ``module:attr``) and instance indices."""

    framework: str
    indices: list[int]


@dataclass
class Parts:
    """What the part files of a run hold.

    blocks:  (framework, instance index) -> (rows, stats) of every finished instance.
    headers: the workers' run headers (framework versions, devices, APIs).
    wall_s:  framework -> summed wall time of its worker processes.
    """

    blocks: dict[tuple[str, int], tuple[list[Row], dict[str, Any]]] = field(default_factory=dict)
    headers: list[dict[str, Any]] = field(default_factory=list)
    wall_s: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))


def read_parts(parts_dir: Path) -> Parts:
    """Read every part file; only instances closed by a ``done`` marker count (first wins)."""
    parts = Parts()
    for file in sorted(parts_dir.glob("*.jsonl")):
        pending: list[Row] = []
        for obj in read_lines(file):
            kind = obj.get("kind")
            if kind == "run":
                parts.headers.append(obj)
            elif kind == "worker":
                parts.wall_s[obj["framework"]] += obj.get("wall_s", 0.0)
            elif kind == "done":
                key = (obj["framework"], obj["index"])
                parts.blocks.setdefault(key, (pending, obj.get("stats", {})))
                pending = []
            else:
                pending.append(obj)
    return parts


def save_instances(instances: list[Instance], parts_dir: Path) -> Path:
    """Save the run's instances for its workers (``--instances``), which then start from
    them instead of reading, parsing and expanding every case file again; a file of the
    supervisor's own (a run's supervisors may share ``parts_dir``), renamed into place."""
    path = parts_dir / f"instances.{uuid.uuid4().hex[:12]}.pickle"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(instances, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)
    return path


def option_values(args: list[str], option: str) -> list[str]:
    """The values given to ``option`` in a worker's argument list (``--dtype X``)."""
    return [v for a, v in itertools.pairwise(args) if a == option]


def slug(name: str) -> str:
    """A file-name-safe form of a framework name or ``module:attr`` spec."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def describe_exit(code: int) -> str:
    """``killed by signal 11 (SIGSEGV)`` or ``exit status 7``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def fault_row(
    framework: str, instance: Instance | None, at: tuple[str, str, str] | None, status: str,
    message: str,
) -> Row:  # fmt: skip
    """A ``crash`` or ``timeout`` row for ``instance`` (``*`` for what is not known)."""
    dtype, device, api = at or ("*", "*", "*")
    if instance is None:
        unknown = {k: "*" for k in ("case", "instance", "loss", "api", "device", "dtype")}
        base: Row = {**unknown, "params": {}, "framework": framework}
    else:
        base = base_row(instance, framework, api, device, dtype)
    return {**base, "quantity": "value", **no_comparison(status, message)}


@dataclass
class Supervisor:
    """Runs units in workers, writing its own crash/timeout rows to a part file of its own."""

    instances: list[Instance]
    worker_args: list[str]
    parts_dir: Path
    progress: Progress
    timeout: float = 300.0
    startup_timeout: float = STARTUP_TIMEOUT
    #: environment variables set for the workers on top of the runner's (the compile cache)
    env: dict[str, str] = field(default_factory=dict)
    #: framework -> worker arguments for that framework alone (``--api`` filters)
    framework_args: dict[str, list[str]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    #: framework -> the crash row of its first worker that never got to an instance
    #: (one per framework, whatever its number of units; not persisted: retried on resume)
    setup_failures: dict[str, Row] = field(default_factory=dict)
    #: framework -> workers lost to a crash, a timeout or a poisoned GPU context
    replaced: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._writer = ResultWriter(self.parts_dir / f"supervisor.{uuid.uuid4().hex[:12]}.jsonl")
        self._instances_file = save_instances(self.instances, self.parts_dir)
        self._prefetchers: list[threading.Thread] = []
        self._prefetching = threading.Lock()  # one golden at a time (the GIL runs one anyway)
        shared = option_values(self.worker_args, "--golden-cache")
        # where the goldens computed while a worker starts go: the run's golden cache, or
        # (a lone worker without one) a folder the worker only reads, --prefetched
        self._goldens = Path(shared[-1]) if shared else self.parts_dir / "prefetched"
        self._prefetch_args = [] if shared else ["--prefetched", str(self._goldens)]
        self._dtypes = option_values(self.worker_args, "--dtype")

    def close(self) -> None:
        for thread in self._prefetchers:  # nothing is written into the parts after this
            thread.join()
        self._writer.close()

    def _prefetch(self, indices: list[int], ready: threading.Event) -> None:
        """Start computing the goldens of ``indices`` (in the worker's order) into the
        golden cache the worker reads, until it says ``ready``.

        A worker spends its first seconds importing its framework, when the supervisor
        has nothing to do: the goldens it would compute first are then waiting for it.
        Only that time is used: at ``ready`` the golden under way is finished and the rest
        left to the worker, so a run takes no more cores than its ``--jobs`` once started.
        """
        work = [(i, d) for i in indices for d in self.instances[i].case.dtypes
                if not self._dtypes or d in self._dtypes]  # fmt: skip

        def run() -> None:
            cache = GoldenCache(self._goldens)
            raw: dict[int, dict[str, Any]] = {}  # the inputs of the instance under way
            for i, dtype in work:
                if ready.is_set() or self.stop.is_set():
                    return
                instance = self.instances[i]
                try:
                    with self._prefetching:
                        if i not in raw:
                            raw = {i: instance.inputs()}
                        golden_for(instance, rounded_inputs(instance, raw[i], dtype), cache)
                except Exception:  # the worker meets the same error on this input and records
                    return  # it (a crash row naming the instance); nothing more to prepare

        thread = threading.Thread(target=run, name="xentcheck-prefetch", daemon=True)
        self._prefetchers.append(thread)
        thread.start()

    def _record(
        self, rows: list[Row], framework: str, index: int | None, wall_s: float = 0.0
    ) -> None:
        with self._lock:
            self._writer.write_all(rows)
            if index is not None:
                name = self.instances[index].name
                self._writer.write({"kind": "done", "framework": framework, "index": index,
                                    "instance": name, "stats": {}})  # fmt: skip
            if wall_s:
                self._writer.write(
                    {"kind": "worker", "framework": framework, "wall_s": round(wall_s, 3)}
                )

    def run_unit(self, unit: Unit) -> None:
        """Run ``unit`` to the end, replacing workers that die, hang or poison their GPU;
        stop when a worker of its framework (this unit's or another's) could not start."""
        remaining = list(unit.indices)
        while remaining and not self.stop.is_set() and unit.framework not in self.setup_failures:
            if self._run_worker(unit.framework, remaining) is None:  # never started: recorded
                return

    def _run_worker(self, fw: str, remaining: list[int]) -> bool | None:
        """One worker over ``remaining`` (done indices are removed); None when it never started."""
        part = self.parts_dir / f"{slug(fw)}.{uuid.uuid4().hex[:12]}.jsonl"
        r_fd, w_fd = os.pipe()
        cmd = [sys.executable, "-m", "xentcheck.harness.worker", "--framework", fw,
               "--out", str(part), "--control-fd", str(w_fd),
               "--indices", ",".join(map(str, remaining)),
               "--instances", str(self._instances_file), *self.worker_args,
               *self._prefetch_args, *self.framework_args.get(fw, [])]  # fmt: skip
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                pass_fds=(w_fd,), start_new_session=True)  # fmt: skip
        os.close(w_fd)
        ready = threading.Event()
        self._prefetch(list(remaining), ready)
        assert proc.stdout is not None
        tail: collections.deque[str] = collections.deque(maxlen=30)
        name, current, at, started, finished = fw, None, None, False, 0
        deadline = t0 + self.startup_timeout
        timed_out = stopped = False
        buffers = {r_fd: b"", proc.stdout.fileno(): b""}
        sel = selectors.DefaultSelector()
        for fd in buffers:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        open_fds = set(buffers)
        try:
            while open_fds:
                if self.stop.is_set():
                    stopped = True
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                for key, _ in sel.select(timeout=0.2):
                    fd = key.fd
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    *lines, buffers[fd] = (buffers[fd] + chunk).split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        if fd != r_fd:
                            tail.append(line)
                            if line.startswith("xentcheck:"):
                                self.progress.message(line)
                            continue
                        word, _, rest = line.partition(" ")
                        if word == "ready":
                            ready.set()
                            name, started = rest or fw, True
                            deadline = time.monotonic() + self.timeout
                        elif word == "start":
                            current, at = int(rest), None
                            deadline = time.monotonic() + self.timeout
                        elif word == "at":
                            _, dtype, device, api = rest.split(" ", 3)
                            at = (dtype, device, api)
                        elif word == "done":
                            remaining.remove(int(rest))
                            current, at, finished = None, None, finished + 1
                            self.progress.advance(fw)
        finally:
            ready.set()
            if timed_out or stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
            sel.close()
            os.close(r_fd)
            proc.stdout.close()
        for fd, rest in buffers.items():
            if rest and fd != r_fd:
                tail.append(rest.decode("utf-8", "replace"))
        wall = time.monotonic() - t0
        if stopped:
            self._record([], fw, None, wall)
            return True
        last = " | ".join(list(tail)[-8:])
        if not started or (current is None and not finished):  # no progress: do not retry
            if timed_out:
                how = f"hung for {self.startup_timeout if not started else self.timeout:g} s"
            else:
                how = describe_exit(code)
            msg = f"worker {how} before running any instance; last output: {last}"
            with self._lock:
                first = fw not in self.setup_failures
                self.setup_failures.setdefault(fw, fault_row(name, None, None, "crash", msg))
            if first:
                self.progress.message(f"xentcheck: {fw}: {msg}")
            return None
        if current is None and code in (0, POISONED_EXIT) and not timed_out:
            self._record([], fw, None, wall)
            self.replaced[fw] += code == POISONED_EXIT
            return True
        if current is None:  # died or hung between instances: blame the next one
            if not remaining:
                self._record([], fw, None, wall)
                return True
            current = remaining[0]
        instance = self.instances[current]
        where = f" in {at[2]} ({at[0]}, {at[1]})" if at else ""
        if timed_out:
            msg = (f"no result after {self.timeout:g} s (--timeout){where}; the worker was "
                   f"stopped and a fresh one continues; last output: {last}")  # fmt: skip
            row = fault_row(name, instance, at, "timeout", msg)
        else:
            msg = f"worker {describe_exit(code)}{where}; last output: {last}"
            row = fault_row(name, instance, at, "crash", msg)
        self._record([row], fw, current, wall)
        self.replaced[fw] += 1
        remaining.remove(current)
        self.progress.advance(fw)
        self.progress.message(f"xentcheck: {name}: {row['status']} on {instance.name}: {msg[:200]}")
        return True
