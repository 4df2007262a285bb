"""pytest plugin: xentcheck case files collected as pytest items, when asked.

The plugin collects nothing unless a run asks for it, and never opens a YAML file outside
the case paths it was given. It is asked by any of:

- ``--xentcheck-cases PATH`` (repeatable): these case files or folders;
- the ini key ``xentcheck_cases`` (``pytest.ini``, ``[tool.pytest.ini_options]``): the
  same, relative to the ini file (``--xentcheck-cases`` replaces it);
- ``--xentcheck``, or any other ``--xentcheck-*`` option: the paths named on the command
  line, or the shipped suite when none is named.

Case paths from the command line are collected like paths named on it (the whole run
when no path is named; a named path inside a case path narrows it). The ini key's join a
run that names no paths (``testpaths``), when pytest starts in the root folder.
In the case paths it collects one item per instance x framework API x dtype x device,
with node ids that read like the results::

    cases/softmax_cross_entropy/huge_logits.yaml::huge-logits::torch.nn.functional.cross_entropy::float16::cpu[reduction=mean]

so ``-k``, ``-x``, ``--lf``, ``--junitxml`` and pytest-xdist's ``-n auto`` work as usual.
An item passes when every quantity (value and gradients) is within tolerance, is
``xfail`` when the only differences are documented ones (``known``, with their reason),
is skipped when the API lacks the variant (``unsupported``), and fails otherwise with
expected vs actual, the errors and a reproduction script. A case file that breaks the
rules is one collection error, ``file:line: reason``.

Within the case paths, only YAML files with a top-level ``cases:`` key and a ``loss:``
are collected (``-p no:xentcheck`` switches the plugin off altogether).
Frameworks are imported when the first case file is collected, never before. Inputs and
goldens are computed once per instance and dtype in each process (a small LRU cache, as
items of one instance are adjacent).

Options: ``--xentcheck-framework NAME`` (repeatable; a built-in name, an installed
adapter's name, or ``module:attribute``; default: every framework importable here that
can share this process: Keras on the JAX or torch backend needs a pytest run of its own,
``--xentcheck-framework keras-jax``),
``--xentcheck-dtype D`` (repeatable), ``--xentcheck-device cpu|gpu|all``.

Registered through the ``pytest11`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import re
import shlex
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: dtypes and devices the options accept (xentcheck.dtypes.FLOAT_DTYPES, without importing it)
DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "gpu", "all")

#: a case file has a top-level ``cases:`` key (block or quoted style) and names a loss
_CASES_KEY = re.compile(rb"""^(?:cases|"cases"|'cases')\s*:""", re.M)
_LOSS_KEY = re.compile(rb"""\bloss["']?\s*:""")

#: statuses that fail an item (xentcheck.harness.results.DISCREPANCIES)
FAILING = ("mismatch", "nonfinite", "error", "crash", "timeout")
REFERENCE_API = "xentcheck.reference.evaluate"

#: per cache (inputs, goldens): items of one case are adjacent, so this computes each
#: instance's inputs and each golden once; large vocabularies are bounded by bytes
_CACHE_ENTRIES = 256
_CACHE_BYTES = 256 * 2**20
#: a longer reproduction script is written to a file and its path shown
_INLINE_SCRIPT_LINES = 40
#: failures per process that get a reproduction script (the rest show the rerun line)
_MAX_SCRIPTS = 20


#: the options that ask for the plugin without naming case paths (dests, all default None)
_ASKING = ("xentcheck", "xentcheck_framework", "xentcheck_dtype", "xentcheck_device")
_YAML = (".yaml", ".yml")


def is_case_file(path: Path) -> bool:
    """True for a ``.yaml``/``.yml`` file with a top-level ``cases:`` key naming a ``loss``.

    This reads the file: call it only for a file within the case paths (:func:`within`)."""
    if path.suffix not in _YAML:
        return False
    try:
        head = path.read_bytes()
    except OSError:
        return False
    return bool(_CASES_KEY.search(head)) and bool(_LOSS_KEY.search(head))


def within(path: Path, roots: Iterable[Path]) -> bool:
    """True when ``path`` is one of ``roots`` or lies under one (resolved ``roots``);
    decided from the path alone, without opening the file."""
    path = path.resolve()
    return any(path == root or root in path.parents for root in roots)


# ------------------------------------------------------------------------ hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xentcheck", "xentcheck case files (off unless asked)")
    group.addoption(
        "--xentcheck",
        action="store_true",
        default=None,
        help="collect xentcheck case files under the paths named on the command line "
        "(the shipped suite when none is named); any --xentcheck-* option implies it",
    )
    group.addoption(
        "--xentcheck-cases",
        action="append",
        metavar="PATH",
        help="collect the xentcheck case files in this file or folder (repeatable; "
        "replaces the ini key xentcheck_cases); no other YAML is read",
    )
    group.addoption(
        "--xentcheck-framework",
        action="append",
        metavar="NAME",
        help="framework adapter to run: a built-in name, an installed adapter, or "
        "module:attribute (repeatable; default: every framework importable here, "
        "but keras-jax and keras-torch, which need a pytest process of their own)",
    )
    group.addoption(
        "--xentcheck-dtype",
        action="append",
        choices=DTYPES,
        metavar="DTYPE",
        help=f"only this dtype, one of {', '.join(DTYPES)} (repeatable; default: the cases' dtypes)",
    )
    group.addoption(
        "--xentcheck-device",
        choices=DEVICES,
        default=None,
        help="cpu, gpu, or all (default: cpu, and gpu where the framework sees one)",
    )
    parser.addini(
        "xentcheck_cases",
        type="paths",
        help="xentcheck case files or folders to collect, relative to this file "
        "(the plugin collects nothing without this key or a --xentcheck option)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xentcheck: an item collected from a xentcheck case file")
    if config.getoption("help", False):
        return
    names = config.getoption("xentcheck_framework")
    if names:
        _check_names(names)
    roots = case_paths(config)
    if roots is None:
        return  # not asked: no state, so no file is ever looked at
    _add_to_run(config, roots)
    config.stash[_STATE] = State(
        names=names,
        dtypes=config.getoption("xentcheck_dtype"),
        device=config.getoption("xentcheck_device") or "all",
        roots=tuple(r.resolve() for r in roots),
    )


def case_paths(config: pytest.Config) -> list[Path] | None:
    """The case files and folders this run asked for, or None when it asked for none.

    ``--xentcheck-cases`` first, then the ini key ``xentcheck_cases``; otherwise, when
    ``--xentcheck`` or another ``--xentcheck-*`` option is given, the paths named on the
    command line, or the shipped suite when none is named. A named path that does not
    exist is a usage error."""
    here = config.invocation_params.dir
    named = config.getoption("xentcheck_cases")
    if named:
        paths, origin = [here / p for p in named], "--xentcheck-cases"
    elif config.getini("xentcheck_cases"):
        paths, origin = list(config.getini("xentcheck_cases")), "xentcheck_cases (ini)"
    elif not any(config.getoption(o) is not None for o in _ASKING):
        return None
    elif config.args_source == pytest.Config.ArgsSource.ARGS and config.args:
        return [here / arg.split("::")[0] for arg in config.args]
    else:
        return [_shipped_suite()]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise pytest.UsageError(
            f"{origin}: no such file or folder: {', '.join(missing)} (name case files or "
            "folders of them)"
        )
    return paths


def _shipped_suite() -> Path:
    """The suite installed with xentcheck (``xentcheck.harness.cases.shipped_suite``)."""
    from xentcheck.harness.cases import shipped_suite
    from xentcheck.harness.errors import CaseError

    try:
        return shipped_suite()
    except CaseError as exc:
        raise pytest.UsageError(
            f"xentcheck: no case paths named and no shipped suite here ({exc}); name "
            "them: pytest --xentcheck-cases PATH (or the ini key xentcheck_cases)"
        ) from None


def _add_to_run(config: pytest.Config, roots: list[Path]) -> None:
    """Make pytest collect the case paths where the command line did not already name them.

    Case paths from the command line (``--xentcheck-cases``, the shipped suite) are part
    of the run like paths named on it, and are the whole run when none is named; a named
    path inside a case path narrows it. The ini key's join a run that names no paths
    (``testpaths`` or the current folder), when pytest starts in the root folder."""
    here = config.invocation_params.dir
    from_ini = not config.getoption("xentcheck_cases") and config.getini("xentcheck_cases")
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    if from_ini and (named or here != config.rootpath):
        return
    if not named and not from_ini:
        config.args[:] = [str(root) for root in roots]
        return
    covered = [(here / arg.split("::")[0]).resolve() for arg in config.args]
    for root in roots:
        if not any(within(root, [c]) or within(c, [root.resolve()]) for c in covered):
            config.args.append(str(root))


def _check_names(names: list[str]) -> None:
    """Reject an unknown framework name before collection (without importing frameworks)."""
    import importlib.util

    from xentcheck.adapters import FRAMEWORKS, OWN_PROCESS, entry_point_adapters

    known = [*FRAMEWORKS, *entry_point_adapters()]
    alone = [n for n in dict.fromkeys(names) if n in OWN_PROCESS]
    if alone and len(set(names)) > 1:
        raise pytest.UsageError(
            f"--xentcheck-framework {alone[0]} needs a pytest process of its own (Keras "
            "picks its backend once per process): run it without other frameworks"
        )
    for name in names:
        if ":" in name:
            module = name.partition(":")[0]
            try:
                found = bool(module) and importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise pytest.UsageError(
                    f"--xentcheck-framework {name}: no module {module!r} on the Python path"
                )
        elif name not in known:
            raise pytest.UsageError(
                f"--xentcheck-framework {name}: unknown framework; use one of "
                f"{', '.join(known)}, or module:attribute"
            )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(_STATE, None)
    if state is None or file_path.suffix not in _YAML or not within(file_path, state.roots):
        return None  # decided without opening the file
    if is_case_file(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.loaded:
        return
    for line in state.summary_lines():
        terminalreporter.write_line(line)


# ------------------------------------------------------------------------ state


class FrameworkLoadError(Exception):
    """A framework named on the command line (or installed) cannot be loaded."""


@dataclass
class State:
    """Per-process state: the frameworks (loaded on first use) and the caches."""

    names: list[str] | None
    dtypes: list[str] | None
    device: str
    roots: tuple[Path, ...] = ()
    loaded: list[Any] | None = None
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: int = 0
    devices: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    _raw: OrderedDict = field(default_factory=OrderedDict)
    _golden: OrderedDict = field(default_factory=OrderedDict)
    _reference: OrderedDict = field(default_factory=OrderedDict)

    def frameworks(self) -> list[Any]:
        """The selected Frameworks, imported and set up once (on the first case file)."""
        if self.loaded is None:
            self.loaded = self._load()
        return self.loaded

    def _load(self) -> list[Any]:
        from xentcheck.adapters import available_frameworks, load_framework
        from xentcheck.harness.results import run_header

        explicit = bool(self.names)
        names = list(dict.fromkeys(self.names or available_frameworks(one_process=True)))
        out = []
        for name in names:
            try:
                fw = load_framework(name)
                fw.setup()
                info = fw.devices()
            except Exception as exc:
                msg = f"xentcheck: framework {name!r} cannot be loaded: {type(exc).__name__}: {exc}"
                if explicit:
                    raise FrameworkLoadError(
                        msg + " (choose another with --xentcheck-framework)"
                    ) from exc
                warnings.warn(msg + "; its items are not collected", stacklevel=1)
                continue
            devices, skipped = ["cpu"], {}
            if self.device in ("gpu", "all"):
                if info.get("gpu"):
                    devices.append("gpu")
                else:
                    skipped["gpu"] = fw.gpu_missing_reason() or "no GPU present"
            if self.device == "gpu":
                devices.remove("cpu")
            self.devices[fw.name] = devices
            self.skipped[fw.name] = skipped
            self.headers[fw.name] = run_header(
                framework=fw.name,
                frameworks={
                    fw.name: {
                        "versions": fw.versions(),
                        "devices": info,
                        "skipped": skipped,
                        "apis": list(dict.fromkeys(a.name for a in fw.apis)),
                    }
                },
            )
            out.append(fw)
        return out

    def summary_lines(self) -> list[str]:
        lines = []
        for fw in self.loaded or []:
            versions = self.headers[fw.name]["frameworks"][fw.name]["versions"]
            main = ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("python",))
            line = f"xentcheck: {fw.name} ({main}) on {', '.join(self.devices[fw.name]) or 'no device'}"
            for dev, why in self.skipped[fw.name].items():
                line += f"; {dev} skipped: {why}"
            lines.append(line)
        return lines

    # caches: items of one instance are adjacent, so a small LRU computes each once

    @staticmethod
    def _cached(cache: OrderedDict, key: Any, make: Callable[[], Any]) -> Any:
        """LRU lookup; the cache keeps at most _CACHE_ENTRIES values and _CACHE_BYTES of arrays."""
        if key in cache:
            cache.move_to_end(key)
            return cache[key][0]
        value = make()
        cache[key] = (value, _nbytes(value))
        while len(cache) > 1 and (
            len(cache) > _CACHE_ENTRIES or sum(n for _, n in cache.values()) > _CACHE_BYTES
        ):
            cache.popitem(last=False)
        return value

    def raw_inputs(self, path: Path, instance) -> dict:
        return self._cached(self._raw, (str(path), instance.name), instance.inputs)

    def rounded(self, path: Path, instance, dtype: str) -> dict:
        """The inputs rounded to ``dtype`` (1e30 in float16 overflows to inf on purpose)."""
        import numpy as np

        from xentcheck.harness.worker import rounded_inputs

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return rounded_inputs(instance, self.raw_inputs(path, instance), dtype)

    def golden(self, path: Path, instance, dtype: str) -> tuple[dict, Any, str | None]:
        """(rounded inputs, golden or None, the reference's reason when it rejects them)."""
        from xentcheck.harness.worker import golden_for

        def make():
            inputs = self.rounded(path, instance, dtype)
            golden, reason = golden_for(instance, inputs)
            return inputs, golden, reason

        return self._cached(self._golden, (str(path), instance.name, dtype), make)

    def reference_rows(self, path: Path, instance) -> list[dict]:
        """The rows checking the reference against the case's ``expected``/``expect_error``."""
        from xentcheck.harness.runner import reference_rows

        rows = self._cached(
            self._reference, (str(path), instance.case.id), lambda: reference_rows([instance.case])
        )
        return [r for r in rows if r["instance"] == instance.name]


_STATE = pytest.StashKey[State]()


def _nbytes(obj: Any) -> int:
    """Bytes held by the arrays in ``obj`` (dicts, tuples, lists, a Golden)."""
    if hasattr(obj, "nbytes"):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(v) for v in obj)
    if hasattr(obj, "value") and hasattr(obj, "grads"):
        return _nbytes(obj.value) + _nbytes(obj.grads)
    return 0


def _state(node: pytest.Item | pytest.Collector) -> State:
    return node.config.stash[_STATE]


# ------------------------------------------------------------------------ nodes


def _safe(name: str) -> str:
    """A node name pytest can select from the command line: ``::`` separates node ids and
    a ``[`` starts the parametrization, so an API named ``...+weight[target]`` shows as
    ``...+weight(target)`` in the node id (the failure message keeps the real name)."""
    return name.replace("::", ":").replace("[", "(").replace("]", ")")


class CaseFile(pytest.File):
    """A xentcheck case file: one child per case."""

    def collect(self) -> Iterator[pytest.Collector]:
        from xentcheck.harness.cases import load_cases

        # the command line's loader, so a case it rejects is rejected here too
        for case in load_cases([self.path]):
            yield CaseNode.from_parent(self, name=_safe(case.id), case=case)

    def repr_failure(self, excinfo):
        return _one_line(self, excinfo) or super().repr_failure(excinfo)


def _one_line(node: pytest.Node, excinfo: pytest.ExceptionInfo) -> str | None:
    """A bad case file or an unloadable framework as its one line (``file:line: reason``,
    the file relative to where pytest was started), without a traceback; None for
    anything else."""
    from xentcheck.harness.errors import CaseError

    exc = excinfo.value
    if isinstance(exc, CaseError) and os.path.isabs(exc.path):
        where = os.path.relpath(exc.path, node.config.invocation_params.dir)
        return where + str(exc)[len(exc.path) :]
    if isinstance(exc, (CaseError, FrameworkLoadError)):
        return str(exc)
    return None


class _Group(pytest.Collector):
    """A level of the node id (API, dtype) whose children are already known."""

    def __init__(self, *, children: Callable[[_Group], Iterable[pytest.Node]], **kw) -> None:
        super().__init__(**kw)
        self._children = children

    def collect(self) -> list[pytest.Node]:
        return list(self._children(self))


#: (instance, device) pairs of one API at one dtype
Runs = list[tuple[Any, str]]


class CaseNode(pytest.Collector):
    """One case: children are the framework APIs that apply to at least one of its
    instances, then the dtypes, then one item per device and sweep point
    (``cpu[reduction=mean]``: the sweep is the item's parametrization)."""

    def __init__(self, *, case, **kw) -> None:
        super().__init__(**kw)
        self.case = case

    def repr_failure(self, excinfo):
        return _one_line(self, excinfo) or super().repr_failure(excinfo)

    def collect(self) -> list[pytest.Node]:
        from xentcheck.harness.calls import make_call
        from xentcheck.harness.cases import expand

        state, case = _state(self), self.case
        dtypes = [d for d in case.dtypes if not state.dtypes or d in state.dtypes]
        instances = list(expand(case))
        out: list[pytest.Node] = []
        if (case.expected is not None or case.expect_error) and "float64" in dtypes:
            runs = {"float64": [(i, "cpu") for i in instances]}
            out.append(self._api_node(REFERENCE_API, None, None, runs))
        frameworks = [
            fw
            for fw in state.frameworks()
            if fw.case_tags is None or fw.case_tags.intersection(case.tags)
        ]
        names = [a.name for fw in frameworks for a in fw.apis_for(case.loss)]
        if not names or not dtypes:
            return out
        table: dict[tuple[int, int], dict[str, Runs]] = {}
        for inst in instances:
            # a provisional Call per dtype, without a golden: does each API apply to it?
            # APIs decide by the inputs' kinds and the parameters, so the float64 inputs
            # serve every dtype
            inputs = state.rounded(self.path, inst, "float64")
            for dtype in dtypes:
                call = make_call(inst, inputs, dtype, "cpu", None)
                for f, fw in enumerate(frameworks):
                    devices = state.devices[fw.name]
                    if state.device == "gpu" and "gpu" not in devices:
                        devices = ["gpu"]  # collected, then skipped with the reason
                    for a, api in enumerate(fw.apis_for(case.loss)):
                        if _applies(api, call):
                            runs = table.setdefault((f, a), {}).setdefault(dtype, [])
                            runs.extend((inst, dev) for dev in devices)
        for (f, a), runs in sorted(table.items()):
            fw = frameworks[f]
            api = fw.apis_for(case.loss)[a]
            shown = api.name if names.count(api.name) == 1 else f"{fw.name}:{api.name}"
            out.append(self._api_node(shown, fw, api, runs))
        return out

    def _api_node(self, name: str, fw, api, runs: dict[str, Runs]) -> _Group:
        case = self.case

        def items(group: _Group, dtype: str, pairs: Runs) -> Iterator[pytest.Item]:
            for inst, dev in pairs:
                sweep = inst.name[len(case.key) :]  # "" or "[reduction=mean,...]"
                # an explicit string node id lets pytest >= 9 parse the sweep as the
                # item's parametrization, as it does for the ids that --lf stores
                yield CaseItem.from_parent(
                    group,
                    name=dev + sweep,
                    nodeid=f"{group.nodeid}::{dev}{sweep}",
                    instance=inst,
                    fw=fw,
                    api=api,
                    dtype=dtype,
                    device=dev,
                )

        def dtypes(group: _Group) -> Iterator[pytest.Node]:
            for dtype, pairs in runs.items():
                yield _Group.from_parent(
                    group, name=dtype, children=lambda g, d=dtype, p=pairs: items(g, d, p)
                )

        return _Group.from_parent(self, name=_safe(name), children=dtypes)


def _applies(api, call) -> bool:
    try:
        return bool(api.applies(call))
    except Exception:  # an API that cannot judge is collected; running it tells
        return True


class Discrepancy(Exception):
    """An item's rows hold a discrepancy (or a known difference under --runxfail)."""

    def __init__(self, rows: list[dict]) -> None:
        super().__init__(", ".join(f"{r['quantity']}: {r['status']}" for r in rows))
        self.rows = rows


class CaseItem(pytest.Item):
    """One instance through one API at one dtype on one device (all its quantities)."""

    def __init__(self, *, instance, fw, api, dtype: str, device: str, **kw) -> None:
        super().__init__(**kw)
        self.instance, self.fw, self.api, self.dtype, self.device = instance, fw, api, dtype, device
        self.rows: list[dict] = []
        self.add_marker("xentcheck")
        case = instance.case
        self.extra_keyword_matches.update({case.loss, fw.name if fw else "reference", *case.tags})

    def runtest(self) -> None:
        state = _state(self)
        if self.fw is None:
            self.rows = state.reference_rows(self.path, self.instance)
        elif self.device not in state.devices.get(self.fw.name, []):
            why = state.skipped.get(self.fw.name, {}).get(self.device, "device not selected")
            _skip(f"{self.fw.name} has no {self.device}: {why}")
        else:
            from xentcheck.harness.worker import run_api

            inputs, golden, reason = state.golden(self.path, self.instance, self.dtype)
            self.rows = run_api(
                self.fw, self.api, self.instance, inputs, self.dtype, self.device, golden, reason
            )
        for r in self.rows:
            self.user_properties.append((f"{r['quantity']}", r["status"]))
            if r.get("max_ulp") is not None:
                self.user_properties.append((f"{r['quantity']}:max_ulp", r["max_ulp"]))
        judge(self.rows, runxfail=self.config.getoption("runxfail", False))

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(Discrepancy):
            state = _state(self)
            state.failures += 1
            script = state.failures <= _MAX_SCRIPTS  # writing one takes ~0.1 s
            return failure_text(
                excinfo.value.rows,
                self._header(),
                self.nodeid,
                _script_dir(self) if script else None,
                with_script=script,
            )
        return super().repr_failure(excinfo, style=style)

    def _header(self) -> dict | None:
        return _state(self).headers.get(self.fw.name) if self.fw else None

    def reportinfo(self):
        line = self.instance.case.source.line
        return self.path, (line - 1 if line else None), self.name_path()

    def name_path(self) -> str:
        return self.nodeid.split("::", 1)[-1]


def _script_dir(item: pytest.Item) -> Path | None:
    """Where reproduction scripts go: pytest's cache (``.pytest_cache/d/xentcheck-repro``)."""
    cache = getattr(item.config, "cache", None)
    try:
        if cache is not None:
            return Path(cache.mkdir("xentcheck-repro"))
        import tempfile

        path = Path(tempfile.gettempdir()) / "xentcheck-repro"
        path.mkdir(exist_ok=True)
        return path
    except OSError:
        return None


def _skip(reason: str) -> None:
    """Skip the running item, reported at the case's line (not at this plugin's)."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # a pytest without the private flag: the plugin's line, still a skip
        exc = pytest.skip.Exception(reason)
    raise exc


def judge(rows: list[dict], runxfail: bool = False) -> None:
    """Pass, fail, xfail or skip an item from its result rows."""
    bad = [r for r in rows if r["status"] in FAILING]
    known = [r for r in rows if r["status"] == "known"]
    if bad or (known and runxfail):
        raise Discrepancy(rows)
    if known:
        reasons = dict.fromkeys(
            f"known difference {r['known_id']}: {r['explanation']} ({r['link']})" for r in known
        )
        quantities = ", ".join(r["quantity"] for r in known)
        pytest.xfail(f"{quantities}: " + " | ".join(reasons))
    if not rows:
        _skip("the API does not apply to this instance")
    if all(r["status"] == "unsupported" for r in rows):
        _skip("unsupported: " + "; ".join(dict.fromkeys(r.get("message", "") for r in rows)))


# ------------------------------------------------------------------ failure text


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.9g}"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return str(x)


def _window(row: dict) -> str:
    """Which elements the expected/actual samples are (the worst one and its neighbours)."""
    index, shape = row.get("index"), row.get("shape")
    if not index or not shape:
        return ""
    flat = 0
    for i, n in zip(index, shape, strict=False):
        flat = flat * n + i
    lo = max(0, flat - 1)
    return (
        f"worst element {index} of shape {shape}; samples are flat elements "
        f"{lo}..{lo + len(row.get('expected') or []) - 1}"
    )


def failure_text(
    rows: list[dict],
    header: dict | None,
    nodeid: str,
    script_dir: Path | None = None,
    with_script: bool = True,
) -> str:
    """What a failing item shows: per quantity the status, errors, expected vs actual,
    the documented explanation if any, then a reproduction script."""
    first = rows[0]
    lines = [
        f"{first['api']} on {first['loss']} at {first['dtype']} ({first['device']}) "
        f"differs from the float64 reference",
        f"case: {first['source']['file']}:{first['source']['line']}  params: {first['params']}",
    ]
    if first.get("description"):
        lines.append(f"      {first['description']}")
    for r in rows:
        status = r["status"]
        lines.append(f"{r['quantity']}: {status}")
        if r.get("max_abs_err") is not None:
            lines.append(
                f"    max_abs_err {_fmt(r['max_abs_err'])}  max_rel_err {_fmt(r['max_rel_err'])}"
                f"  max_ulp {_fmt(r['max_ulp'])}"
                + (f"  (rtol {r['rtol']:g}, atol {r['atol']:g})" if "rtol" in r else "")
            )
        if r.get("expected") or r.get("actual"):
            where = _window(r)
            if where:
                lines.append(f"    {where}")
            lines.append(f"    expected: {_fmt(r.get('expected', []))}")
            lines.append(f"    actual  : {_fmt(r.get('actual', []))}")
        if r.get("message"):
            lines.append(f"    {r['message']}")
        if status == "known":
            lines.append(f"    known difference {r['known_id']}: {r['explanation']} ({r['link']})")
    lines.append("")
    lines.append("reproduce:")
    lines.append(f"    pytest {shlex.quote(nodeid)}")
    if not with_script:
        lines.append(
            f"    (reproduction scripts are written for the first {_MAX_SCRIPTS} failures of "
            "a run; run this item alone for its script)"
        )
        return "\n".join(lines)
    script = repro_script(rows, header)
    if script and script_dir is not None and script.count("\n") > _INLINE_SCRIPT_LINES:
        path = script_dir / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", nodeid)[-150:] + ".py")
        path.write_text(script, encoding="utf-8")
        lines.append(
            f"    python {shlex.quote(str(path))}    # standalone script, {script.count(chr(10))} lines"
        )
    elif script:
        lines.append("")
        lines.extend("    " + s for s in script.rstrip().splitlines())
    return "\n".join(lines)


def repro_script(rows: list[dict], header: dict | None) -> str | None:
    """A standalone reproduction script (``xentcheck.report.repro.script``), if available."""
    row = next((r for r in rows if r["status"] in FAILING), rows[0])
    try:
        from xentcheck.report.repro import script
    except ImportError:
        return None
    headers = [header] if header else []
    try:
        return script(row, headers)
    except Exception as exc:  # the failure message must never be lost to the script
        return f"# (no reproduction script: {type(exc).__name__}: {exc})"
