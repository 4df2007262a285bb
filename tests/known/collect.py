"""Run table cases through one framework, in a process of its own, the worker's way.

``python -m tests.known.collect FRAMEWORK PLAN.json OUT.pickle``: PLAN is a list of
``{"key", "api", "cases"}`` (a case folder run through that one API of FRAMEWORK, on the
CPU); OUT gets ``{"apis", "rows"}``: the names of every API the adapter declares, and
``[{"key", "row", "finding"}]``: every result row :func:`run_instance` made, with the
:class:`~xentcheck.known.Finding` the worker handed to ``explain`` for it (None for a row
it did not judge: a pass, an unsupported call). The frameworks run here,
each in its own process as in ``xentcheck run`` (Keras picks its backend once per process);
the predicates are judged again by the tests, in their own process.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
from pathlib import Path

from xentcheck.adapters import load_framework
from xentcheck.harness import worker
from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.plan import runs_case


def collect(framework: str, plan: list[dict], devices: tuple[str, ...] = ("cpu",)) -> list[dict]:
    """The rows (and the findings behind them) of every plan item."""
    fw = load_framework(framework)
    fw.setup()
    findings: dict[tuple, object] = {}
    at: list[tuple] = []
    real_explain = worker.explain

    def recording_explain(f, *args, **kwargs):  # the worker's own explain, its input kept
        findings[(*at[-1], f.quantity)] = f
        return real_explain(f, *args, **kwargs)

    worker.explain = recording_explain
    out = []
    for item in plan:
        named = [a for a in fw.apis if a.name == item["api"]]  # a name may have several rows
        if not named:
            raise SystemExit(f"{framework} has no API {item['api']!r}")
        one = dataclasses.replace(fw, apis=named)
        for instance in (i for c in load_cases([item["cases"]]) for i in expand(c)):
            if not runs_case(fw.case_tags, instance.case):
                raise SystemExit(f"{framework} does not run case {instance.case.key}: add its tag")

            findings.clear()  # every example's file has the same case names

            def on_call(dtype: str, device: str, api: str, name: str = instance.name) -> None:
                at.append((name, dtype, device, api))

            for row in worker.run_instance(one, instance, None, devices, on_call=on_call):
                key = (row["instance"], row["dtype"], row["device"], row["api"], row["quantity"])
                out.append({"key": item["key"], "row": row, "finding": findings.get(key)})
    return out


def main(argv: list[str]) -> int:
    framework, plan, dest = argv
    rows = collect(framework, json.loads(Path(plan).read_text()))
    apis = [a.name for a in load_framework(framework).apis]
    Path(dest).write_bytes(pickle.dumps({"apis": apis, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
