"""The pytest plugin over tiny case folders, with real torch (and JAX): off unless asked
(and then reading no YAML outside the case paths), ids, -k, xfail for known differences,
failure messages, --lf, --junitxml, pytest-xdist, golden caching."""

from __future__ import annotations

import importlib.util
import re
import textwrap
import xml.etree.ElementTree as ET

import pytest

# pytester's in-process runs drop the modules first imported inside them; a C extension
# (libyaml's parser, jaxlib) does not survive being imported twice, so load them here
import xentcheck.harness.cases
import xentcheck.harness.worker
from xentcheck.harness.errors import CaseError

pytest.importorskip("torch")

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.torch

# the plugin collects nothing unless asked: here, the case files in pytester's folder
TORCH = ["--xentcheck-cases", ".", "--xentcheck-framework", "torch", "-p", "no:randomly"]

# two sweep points x two dtypes; torch has two APIs (functional and module) for it
SMALL = """
cases:
  - id: small
    loss: softmax_cross_entropy
    description: Ordinary logits.
    inputs:
      logits: [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
      target: [2, 0]
    params: {reduction: [none, mean]}
    dtypes: [float64, float32]
"""

# a +inf logit: torch returns NaN, a documented difference (torch-softmax-plus-inf)
PLUS_INF = """
cases:
  - id: plus-inf
    loss: softmax_cross_entropy
    inputs:
      logits: [[.inf, 0.0, 1.0], [1.0, 2.0, 3.0]]
      target: [0, 2]
    params: {reduction: none}
    dtypes: [float64]
"""

# bfloat16 at a tolerance of 0: torch's result must differ (an undocumented mismatch)
TIGHT = """
cases:
  - id: tight
    loss: softmax_cross_entropy
    description: bfloat16 at zero tolerance.
    inputs:
      logits: {random: normal, shape: [4, 50], scale: 3.0, seed: 1}
      target: {random: labels, shape: [4], classes: 50, seed: 2}
    params: {reduction: mean}
    dtypes: [bfloat16]
    tolerance: {rtol: 0.0, atol: 0.0}
"""


# a file an unrelated project might hold: a config with `cases:` and `loss:` keys, and
# not valid YAML either, so reading it as a case file is a collection error
UNRELATED = """
cases:
  - name: baseline
    loss: mse
    lr: [0.1, 0.01
"""

# records every opening of a file named exp.yaml in the pytest process under test
AUDIT_CONFTEST = """
import sys

OPENED = []


def _audit(event, args):
    if event == "open" and str(args[0]).endswith("exp.yaml"):
        OPENED.append(str(args[0]))


sys.addaudithook(_audit)
"""

AUDIT_TEST = """
from conftest import OPENED


def test_conf_exp_yaml_was_never_opened():
    assert OPENED == []
"""


def _ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


def _collection_error(result: pytest.RunResult, name: str) -> list[str]:
    """The non-blank lines pytest shows for the collection error of file ``name``."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if f"ERROR collecting {name} " in line)
    body = []
    for line in lines[start + 1 :]:
        if line.startswith(("____", "====")):
            break
        if line.strip():
            body.append(line)
    return body


def _unrelated_project(pytester: pytest.Pytester) -> None:
    """conf/exp.yaml as above, an audit of its openings, and one ordinary test."""
    pytester.mkdir("conf")
    (pytester.path / "conf" / "exp.yaml").write_text(UNRELATED, encoding="utf-8")
    pytester.makeconftest(AUDIT_CONFTEST)
    pytester.makepyfile(test_plain=AUDIT_TEST)


def test_unrelated_project_yaml_is_never_read(pytester: pytest.Pytester) -> None:
    _unrelated_project(pytester)
    pytester.makefile(".yml", other="cases:\n  - name: a different tool's cases\n  loss: 1\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)  # test_plain: exp.yaml was never opened
    assert result.ret == pytest.ExitCode.OK
    assert "xentcheck:" not in result.stdout.str()  # no framework was loaded


def test_ini_key_collects_its_case_paths_and_reads_nothing_else(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unrelated_project(pytester)
    pytester.mkdir("tests")
    (pytester.path / "test_plain.py").rename(pytester.path / "tests" / "test_plain.py")
    pytester.mkdir("checks")
    (pytester.path / "checks" / "small.yaml").write_text(SMALL, encoding="utf-8")
    pytester.makeini(
        """
        [pytest]
        testpaths = tests
        xentcheck_cases = checks
        addopts = --xentcheck-framework torch
        """
    )
    # a plain pytest: testpaths and the case folder, which testpaths does not name
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=1 + 8)
    # a path on the command line still chooses what runs, and so does a subfolder
    result = pytester.runpytest_subprocess("tests", "-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=1)
    monkeypatch.chdir(pytester.path / "tests")
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("ask", "plain"),
    [
        (["--xentcheck-cases", "checks"], 0),
        (["--xentcheck-cases", "checks/small.yaml"], 0),
        (["other", "--xentcheck-cases", "checks"], 1),
        ([".", "--xentcheck-cases", "checks"], 1),
        (["--xentcheck", "checks"], 0),
        (["--xentcheck-framework", "torch", "checks"], 0),
    ],
    ids=[
        "cases-folder",
        "cases-file",
        "cases-and-a-test-folder",
        "cases-in-a-named-folder",
        "flag-and-path",
        "framework-and-path",
    ],
)
def test_each_opt_in_collects_only_its_case_paths(
    pytester: pytest.Pytester, ask: list[str], plain: int
) -> None:
    pytester.mkdir("checks")
    (pytester.path / "checks" / "small.yaml").write_text(SMALL, encoding="utf-8")
    pytester.mkdir("other")
    (pytester.path / "other" / "test_plain.py").write_text("def test_ok():\n    pass\n")
    # a valid case file outside the case paths: it would be collected if it were read
    pytester.mkdir("conf")
    (pytester.path / "conf" / "exp.yaml").write_text(PLUS_INF, encoding="utf-8")
    result = pytester.runpytest("--collect-only", "-q", *ask, *TORCH[2:])
    ids = _ids(result)
    cases = [i for i in ids if not i.startswith("other/")]
    assert len(cases) == 8 and all(i.startswith("checks/small.yaml::small::") for i in cases)
    assert len(ids) - len(cases) == plain


def test_without_opt_in_case_files_are_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert _ids(result) == []


def test_opt_in_without_paths_runs_the_shipped_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = pytester.mkdir("suite")
    (suite / "small.yaml").write_text(SMALL, encoding="utf-8")
    work = pytester.mkdir("work")
    (work / "exp.yaml").write_text(PLUS_INF, encoding="utf-8")  # not a case path
    monkeypatch.chdir(work)
    monkeypatch.setattr(xentcheck.harness.cases, "shipped_suite", lambda: suite)
    result = pytester.runpytest("--collect-only", "-q", "--xentcheck", *TORCH[2:])
    ids = _ids(result)
    assert len(ids) == 8 and all("small.yaml::small::" in i for i in ids), result.outlines

    # an install without its shipped suite (shipped_suite raises) says what to do instead
    def no_suite():
        raise CaseError("xentcheck/suite", None, "no shipped suite in this install")

    monkeypatch.setattr(xentcheck.harness.cases, "shipped_suite", no_suite)
    result = pytester.runpytest("--collect-only", "--xentcheck", *TORCH[2:])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no case paths named*--xentcheck-cases PATH*"])


def test_missing_case_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--xentcheck-cases", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--xentcheck-cases: no such file or folder: *nosuch*"])


def test_case_files_collect_readable_ids(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    result = pytester.runpytest("--collect-only", "-q", *TORCH)
    ids = _ids(result)
    assert len(ids) == 2 * 2 * 2  # APIs x dtypes x sweep points
    assert (
        "small.yaml::small::torch.nn.functional.cross_entropy::float32::cpu[reduction=mean]" in ids
    )
    assert "small.yaml::small::torch.nn.CrossEntropyLoss::float64::cpu[reduction=none]" in ids


def test_items_pass_and_select_with_k_and_node_ids(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    pytester.runpytest(*TORCH).assert_outcomes(passed=8)
    result = pytester.runpytest("-k", "CrossEntropyLoss and float32", *TORCH)
    result.assert_outcomes(passed=2, deselected=6)
    # a node id copied from the output selects exactly that item (the sweep is its
    # parametrization); without the sweep it selects every sweep point
    one = "small.yaml::small::torch.nn.CrossEntropyLoss::float32::cpu[reduction=mean]"
    pytester.runpytest(one, *TORCH).assert_outcomes(passed=1)
    pytester.runpytest(one.split("[")[0], *TORCH).assert_outcomes(passed=2)


def test_dtype_option_narrows_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    result = pytester.runpytest("--collect-only", "-q", "--xentcheck-dtype", "float64", *TORCH)
    ids = _ids(result)
    assert len(ids) == 4 and all("::float64::" in i for i in ids)


def test_known_difference_is_xfail_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", plus_inf=PLUS_INF)
    result = pytester.runpytest("-rx", *TORCH)
    result.assert_outcomes(xfailed=2)
    result.stdout.fnmatch_lines(["*XFAIL*plus-inf*known difference torch-softmax-plus-inf*"])
    # --runxfail turns a known difference into a failure that shows it
    result = pytester.runpytest("--runxfail", *TORCH)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*known difference torch-softmax-plus-inf*"])


def test_mismatch_fails_with_expected_actual_and_rerun_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", tight=TIGHT)
    result = pytester.runpytest(*TORCH)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*torch.nn.functional.cross_entropy on softmax_cross_entropy at bfloat16 (cpu)*",
            "case: *tight.yaml:2 *",
            "value: mismatch",
            "*max_abs_err*max_rel_err*max_ulp*(rtol 0, atol 0)",
            "*expected: [[]7.8*",
            "*actual  : [[]7.8*",
            "grad:logits: mismatch",
            "*worst element*",
            "reproduce:",
            "*pytest tight.yaml::tight::torch.nn.functional.cross_entropy::bfloat16::cpu",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_last_failed_reruns_only_the_failures(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL, tight=TIGHT)
    pytester.runpytest(*TORCH).assert_outcomes(passed=8, failed=2)
    pytester.runpytest("--lf", *TORCH).assert_outcomes(failed=2, deselected=8)


def test_junitxml_records_each_item_with_its_statuses(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL, tight=TIGHT)
    pytester.runpytest("--junitxml=out.xml", *TORCH)
    root = ET.parse(pytester.path / "out.xml").getroot()
    cases = root.iter("testcase")
    by_name = {(c.get("classname"), c.get("name")): c for c in cases}
    assert len(by_name) == 10
    failed = [k for k, c in by_name.items() if c.find("failure") is not None]
    assert sorted(k[0] for k in failed) == [
        "tight.yaml.tight.torch.nn.CrossEntropyLoss.bfloat16",
        "tight.yaml.tight.torch.nn.functional.cross_entropy.bfloat16",
    ]
    props = {p.get("name"): p.get("value") for p in by_name[failed[0]].iter("property")}
    assert props["value"] == "mismatch" and props["grad:logits"] == "mismatch"
    assert float(props["value:max_ulp"]) > 0


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist")
def test_xdist_runs_the_same_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL, tight=TIGHT, plus_inf=PLUS_INF)
    result = pytester.runpytest_subprocess("-n", "2", *TORCH, timeout=300)
    result.assert_outcomes(passed=8, failed=2, xfailed=2)


def test_goldens_are_computed_once_per_instance_and_dtype(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xentcheck.harness.worker as worker

    calls: list[tuple[str, str]] = []
    real = worker.golden_for

    def counting(instance, inputs):
        calls.append((instance.name, next(iter(inputs.values())).dtype.name))
        return real(instance, inputs)

    monkeypatch.setattr(worker, "golden_for", counting)
    pytester.makefile(".yaml", small=SMALL)
    pytester.runpytest_inprocess(*TORCH).assert_outcomes(passed=8)
    assert len(calls) == 4  # 2 sweep points x 2 dtypes, shared by both APIs


def test_reference_item_checks_expected_values(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        pinned="""
        cases:
          - id: pinned
            loss: softmax_cross_entropy
            inputs: {logits: [[1.0, 2.0, 3.0]], target: [2]}
            params: {reduction: mean}
            dtypes: [float64]
            expected: {value: 0.5}
        """,
    )
    result = pytester.runpytest("-k", "reference", *TORCH)
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*expected value from the case file vs the reference*"])


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    pytester.makeini("[pytest]\nxentcheck_cases = .\naddopts = --xentcheck-framework torch\n")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    pytester.runpytest().assert_outcomes(passed=1 + 8)
    # -p no:xentcheck drops the plugin, its options with it (addopts then names none)
    pytester.makeini("[pytest]\nxentcheck_cases = .\n")
    pytester.runpytest("-p", "no:xentcheck").assert_outcomes(passed=1)


def test_broken_case_file_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        broken=textwrap.dedent(
            """
            cases:
              - id: bad
                loss: softmax_cross_entopy
                inputs: {logits: [[1.0]], target: [0]}
            """
        ),
    )
    result = pytester.runpytest(*TORCH)
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2
    (line,) = _collection_error(result, "broken.yaml")
    assert line.startswith("broken.yaml:3: cases[0].loss: unknown loss")
    assert "softmax_cross_entopy" in line
    assert "Traceback" not in result.stdout.str()


def test_case_the_reference_rejects_is_a_collection_error(pytester: pytest.Pytester) -> None:
    """An off-by-one label (class 3 of 3) without expect_error: true is a bad case, not a
    pass for every framework that raises too."""
    pytester.makefile(
        ".yaml",
        offbyone="""
        cases:
          - id: off-by-one
            loss: softmax_cross_entropy
            inputs: {logits: [[1.0, 2.0, 3.0]], target: [3]}
        """,
    )
    result = pytester.runpytest(*TORCH)
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2
    (line,) = _collection_error(result, "offbyone.yaml")
    assert re.match(r"offbyone\.yaml:[2-5]: .*target", line), line
    assert "Traceback" not in result.stdout.str()


def test_unknown_framework_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", small=SMALL)
    result = pytester.runpytest("--xentcheck-framework", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--xentcheck-framework nosuch: unknown framework; use one of torch*"]
    )
    result = pytester.runpytest("--xentcheck-framework", "no_such_module:adapter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no module 'no_such_module' on the Python path*"])
    result = pytester.runpytest("--xentcheck-framework", "keras-jax", *TORCH)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras-jax needs a pytest process of its own*"])


def test_missing_gpu_items_are_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    if torch_has_gpu():
        pytest.skip("this machine has a GPU")
    pytester.makefile(".yaml", small=SMALL)
    result = pytester.runpytest("--xentcheck-device", "gpu", "-rs", *TORCH)
    result.assert_outcomes(skipped=8)
    result.stdout.fnmatch_lines(["SKIPPED [[]8[]] small.yaml:2: torch has no gpu: *"])


def torch_has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.jax
def test_jax_items(pytester: pytest.Pytester) -> None:
    pytest.importorskip("optax")
    pytester.makefile(".yaml", small=SMALL)
    args = [
        "--xentcheck-cases",
        ".",
        "--xentcheck-framework",
        "jax",
        "--xentcheck-dtype",
        "float32",
    ]
    result = pytester.runpytest_subprocess(*args, timeout=300)
    ids_result = pytester.runpytest_subprocess("--collect-only", "-q", *args, timeout=300)
    ids = _ids(ids_result)
    # optax's integer-label API is routed by reduction: one API per sweep point
    assert ids and all("::optax." in i and "::float32::cpu[" in i for i in ids)
    result.assert_outcomes(passed=len(ids))
