"""One meaning of "set" for every adapter: ``Call.is_set``.

A framework argument (or the recipe standing for it) is passed exactly when the case sets
the parameter, whatever the value: so every value of a sweep, the registry default
included (``label_smoothing: 0.0``), runs the same rows in every framework, with the same
unsupported reasons. Checked on the real adapters through the worker's ``run_api`` on
small instances of a case file; the compiled modes and the Keras backends (which need a
process of their own) are checked on their routing (the rows that apply), which they
share with the eager adapters whose rows run here in full.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tests.adapters.calls import make_call
from xentcheck.adapters import FRAMEWORKS, OWN_PROCESS, available_frameworks, load_framework
from xentcheck.harness.cases import load_cases
from xentcheck.harness.plan import instances_of
from xentcheck.harness.worker import golden_for, rounded_inputs, run_api
from xentcheck.reference import LOSSES

ROOT = Path(__file__).resolve().parents[2]

# Each case is one group, or several cases are (ids ``group--variant``): every instance of
# a group must run the same rows. Parameters outside the sweep are held fixed.
CASES = """\
defaults:
  dtypes: [float64]
cases:
  - id: smoothing-int
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
    params: {label_smoothing: [0.0, 0.1, 1.0]}
  - id: smoothing-int-sum
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
    params: {label_smoothing: [0.0, 0.1], reduction: sum}
  - id: smoothing-kdim
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [2, 4, 3], seed: 2}
      target: [[0, 3, 1], [2, 2, 0]]
    params: {label_smoothing: [0.0, 0.1]}
  - id: smoothing-weight-ignore
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
      weight: [0.5, 1.0, 2.0, 1.5]
    params: {label_smoothing: [0.0, 0.1], ignore_index: 3, reduction: mean}
  - id: smoothing-prob
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: {random: probabilities, shape: [3, 4], seed: 3}
    params: {label_smoothing: [0.0, 0.1], reduction: none}
  - id: ignore-int
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
    params: {ignore_index: [-100, 0, 3], reduction: [mean]}
  - id: ignore-null
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
    params: {ignore_index: null}
  - id: ignore-null--unset
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
  - id: ignore-nll
    loss: nll
    inputs:
      log_probs: [[-1.0, -2.0, -0.5], [-0.3, -1.5, -2.5]]
      target: [2, 0]
    params: {ignore_index: [-100, 0]}
  - id: ignore-tokens
    loss: token_cross_entropy
    inputs:
      logits: {random: normal, shape: [2, 3, 4], seed: 4}
      target: [[0, 1, 2], [3, 2, 1]]
    params: {ignore_index: [-100, 3]}
  - id: class-weight
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
      weight: [1.0, 1.0, 1.0, 1.0]
  - id: class-weight--other
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: [0, 3, 1]
      weight: [0.5, 1.0, 2.0, 1.5]
  - id: pos-weight
    loss: binary_cross_entropy_with_logits
    inputs:
      logits: {random: normal, shape: [3, 2], seed: 5}
      target: {random: binary, shape: [3, 2], seed: 6}
      pos_weight: [1.0, 1.0]
    params: {reduction: [sum]}
  - id: pos-weight--other
    loss: binary_cross_entropy_with_logits
    inputs:
      logits: {random: normal, shape: [3, 2], seed: 5}
      target: {random: binary, shape: [3, 2], seed: 6}
      pos_weight: [2.0, 0.5]
    params: {reduction: [sum]}
  - id: reduction-mean
    loss: binary_cross_entropy
    inputs:
      probs: [[0.2, 0.7], [0.9, 0.4]]
      target: [[0.0, 1.0], [1.0, 0.0]]
    params: {reduction: mean}
  - id: reduction-mean--unset
    loss: binary_cross_entropy
    inputs:
      probs: [[0.2, 0.7], [0.9, 0.4]]
      target: [[0.0, 1.0], [1.0, 0.0]]
  - id: focal-alpha
    loss: sigmoid_focal_loss
    inputs:
      logits: {random: normal, shape: [3, 2], seed: 7}
      target: {random: binary, shape: [3, 2], seed: 8}
    params: {alpha: [0.25, 0.0, 0.5]}
  - id: focal-gamma
    loss: sigmoid_focal_loss
    inputs:
      logits: {random: normal, shape: [3, 2], seed: 7}
      target: {random: binary, shape: [3, 2], seed: 8}
    params: {gamma: [2.0, 0.0, 1.5]}
  - id: kl-log-target-false
    loss: kl_divergence
    inputs:
      input: [[-1.0, -0.5], [-0.2, -2.0]]
      target: [[0.4, 0.6], [0.9, 0.1]]
    params: {log_target: false, reduction: sum}
  - id: kl-log-target-false--unset
    loss: kl_divergence
    inputs:
      input: [[-1.0, -0.5], [-0.2, -2.0]]
      target: [[0.4, 0.6], [0.9, 0.1]]
    params: {reduction: sum}
  - id: softmax-axis
    loss: softmax
    inputs:
      x: {random: normal, shape: [3, 4], seed: 9}
    params: {axis: [-1, 1, 0]}
  - id: logsumexp-axis
    loss: logsumexp
    inputs:
      x: {random: normal, shape: [3, 4], seed: 9}
    params: {axis: [-1, 0]}
"""


def _group(instance_key: str) -> str:
    return instance_key.split("[")[0].split("--")[0]


def signatures(framework: str, cases_file: str) -> dict[str, dict[str, list[str]]]:
    """group -> instance -> the rows ``framework`` gives it, as sorted strings.

    Eager frameworks run every API through the worker's ``run_api``: a row is
    ``api quantity ran`` or ``api quantity unsupported: reason``. Frameworks that run only
    tagged cases (the compiled modes) and those asked to ``route_only`` give the APIs
    that apply, built from the same Call.
    """
    fw = load_framework(framework)
    fw.setup()
    route_only = fw.case_tags is not None or framework in OWN_PROCESS
    out: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for inst in instances_of(load_cases([cases_file])):
        inputs = rounded_inputs(inst, inst.inputs(), "float64")
        rows: set[str] = set()
        if route_only:
            call, _ = make_call(inst.loss, inputs, inst.params)
            rows = {a.name for a in fw.apis_for(inst.loss) if a.applies(call)}
        else:
            golden, error = golden_for(inst, inputs)
            assert golden is not None, f"{inst.name}: {error}"
            for api in fw.apis_for(inst.loss):
                for row in run_api(fw, api, inst, inputs, "float64", "cpu", golden, error):
                    unsupported = row["status"] == "unsupported"
                    outcome = f"unsupported: {row['message']}" if unsupported else "ran"
                    rows.add(f"{row['api']} {row['quantity']} {outcome}")
        out[_group(inst.case.key)][inst.name] = sorted(rows)
    return dict(out)


def _in_own_process(framework: str, cases_file: Path) -> dict[str, dict[str, list[str]]]:
    script = (
        "import json, sys\n"
        "from tests.adapters.test_set_params import signatures\n"
        "print(json.dumps(signatures(sys.argv[1], sys.argv[2])))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", script, framework, str(cases_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_every_value_of_a_parameter_runs_the_same_rows(framework: str, tmp_path: Path) -> None:
    """The default value of a parameter (0.0, -100, all-ones weights, ``mean``, 0.25)
    and any other value run the same APIs, or give the same unsupported reasons."""
    if framework not in available_frameworks():
        pytest.skip(f"{framework}: its packages are not installed")
    cases_file = tmp_path / "set_params.yaml"
    cases_file.write_text(CASES, encoding="utf-8")
    if framework in OWN_PROCESS:
        sigs = _in_own_process(framework, cases_file)
    else:
        sigs = signatures(framework, str(cases_file))
    assert any(rows for g in sigs.values() for rows in g.values()), f"{framework}: no rows"
    differing = {}
    for group, by_instance in sigs.items():
        (first, rows), *rest = by_instance.items()
        for name, other in rest:
            if other != rows:
                differing[group] = {first: rows, name: other}
                break
    assert not differing, f"{framework}: rows differ across a sweep: {differing}"


# ------------------------------------------------------------------- Call.is_set itself


def _call(loss: str, params: dict, **extra):
    inputs = {
        "softmax_cross_entropy": {"logits": np.zeros((2, 3)), "target": np.array([0, 2])},
        "sigmoid_focal_loss": {"logits": np.zeros((2, 2)), "target": np.ones((2, 2))},
    }[loss]
    call, _ = make_call(loss, {**inputs, **extra}, params)
    return call


def test_a_parameter_is_set_when_the_case_names_it_whatever_the_value() -> None:
    assert _call("softmax_cross_entropy", {"label_smoothing": 0.0}).is_set("label_smoothing")
    assert _call("softmax_cross_entropy", {"reduction": "mean"}).is_set("reduction")
    unset = _call("softmax_cross_entropy", {})
    assert not unset.is_set("label_smoothing") and not unset.is_set("reduction")
    # a non-trivial registry default fills params, but the parameter is not set
    focal = _call("sigmoid_focal_loss", {})
    assert focal.params["alpha"] == 0.25 and not focal.is_set("alpha")


def test_null_is_set_only_where_it_is_not_the_default() -> None:
    # ignore_index: null is the registry default ("none"): the same as leaving it out
    assert not _call("softmax_cross_entropy", {"ignore_index": None}).is_set("ignore_index")
    assert _call("softmax_cross_entropy", {"ignore_index": -100}).is_set("ignore_index")
    # alpha: null turns the weighting off, unlike the default 0.25: a setting
    assert _call("sigmoid_focal_loss", {"alpha": None}).is_set("alpha")


def test_an_optional_input_is_set_when_given() -> None:
    assert _call("softmax_cross_entropy", {}, weight=np.ones(3)).is_set("weight")
    assert not _call("softmax_cross_entropy", {}).is_set("weight")


def test_kwargs_are_the_set_parameters_under_the_framework_names() -> None:
    call = _call("softmax_cross_entropy", {"label_smoothing": 0.0, "ignore_index": 2})
    assert call.kwargs(("label_smoothing", "reduction")) == {"label_smoothing": 0.0}
    assert call.kwargs({"ignore_index": "ignore_class"}) == {"ignore_class": 2}
    assert call.kwargs({"ignore_index": "ignore_class", "reduction": "reduction"}) == {
        "ignore_class": 2
    }
    assert set(LOSSES["softmax_cross_entropy"].params) >= {"label_smoothing", "ignore_index"}
