"""Users' own known differences (``--known FILE``): YAML and Python files, their checks.

Findings are built by hand here (plain data: no framework runs); tests/test_cli.py runs
torch with a user's file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from xentcheck.known import Finding, Known, explain
from xentcheck.known.user import Conditions, KnownFileError, load_known

GOOD_YAML = """\
# my kernel's documented differences
entries:
  - id: mykernel-half-grad
    framework: mykernel
    apis: [mykernel.xent, "mykernel.xent_*"]
    explanation: The backward accumulates in the input dtype.
    link: https://example.org/mykernel#precision
    statuses: [mismatch]
    versions: "mykernel>=1.2"
    when:
      dtype: [float16, bfloat16]
      quantity: "grad:*"
      params: {reduction: [mean, sum]}
      within: {rtol: 0.01}
  - id: mykernel-rejects-axis
    framework: mykernel
    apis: mykernel.lse
    explanation: Raises on a scalar input.
    link: https://example.org/mykernel#axis
    when: {error_contains: "scalar", expect_error: false}
"""

GOOD_PY = """\
from xentcheck.known import Known


def _wide(f):
    return f.inputs["logits"].shape[-1] > 4


ENTRIES = [
    Known(
        id="mykernel-wide",
        framework="mykernel",
        apis=["mykernel.xent"],
        explanation="Vocabularies above 4 classes take another path.",
        link="https://example.org/mykernel#wide",
        when=_wide,
    ),
]
"""


def finding(**changes) -> Finding:
    """A mismatching gradient of ``mykernel.xent`` at float16, 1% off."""
    base = dict(
        framework="mykernel", api="mykernel.xent", loss="softmax_cross_entropy",
        params={"reduction": "mean"}, inputs={"logits": np.zeros((2, 8))}, dtype="float16",
        device="cpu", quantity="grad:logits", status="mismatch",
        expected=np.array([1.0, 2.0]), actual=np.array([1.005, 2.01]), error=None,
        expect_error=False, versions={"mykernel": "1.3"},
    )  # fmt: skip
    return Finding(**{**base, **changes})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_entries_load_with_the_fields_of_built_in_ones(tmp_path):
    half, axis = load_known([write(tmp_path, "mine.yaml", GOOD_YAML)])
    assert (half.id, half.framework, half.apis) == (
        "mykernel-half-grad", "mykernel", ("mykernel.xent", "mykernel.xent_*")
    )  # fmt: skip
    assert half.statuses == ("mismatch",) and half.versions == "mykernel>=1.2"
    assert half.link == "https://example.org/mykernel#precision"
    assert axis.apis == ("mykernel.lse",)  # one API may be written without a list
    assert axis.statuses == ("mismatch", "nonfinite", "error")  # the default, as built-ins
    assert half.matches(finding())
    assert half.covers_api("mykernel.xent_fused")


@pytest.mark.parametrize(
    ("changes", "explained"),
    [
        ({}, True),
        ({"dtype": "float32"}, False),
        ({"quantity": "value"}, False),
        ({"params": {"reduction": "none"}}, False),
        ({"params": {"reduction": "sum"}}, True),
        ({"actual": np.array([1.0, 2.1])}, False),  # 5% off: beyond within.rtol
        ({"actual": None, "error": "RuntimeError: boom", "status": "error"}, False),
        ({"status": "nonfinite"}, False),  # statuses: [mismatch]
        ({"versions": {"mykernel": "1.1"}}, False),  # versions: mykernel>=1.2
        ({"api": "mykernel.other"}, False),
        ({"framework": "torch"}, False),
    ],
)
def test_every_condition_of_when_must_hold(tmp_path, changes, explained):
    half, _ = load_known([write(tmp_path, "mine.yaml", GOOD_YAML)])
    assert half.matches(finding(**changes)) is explained


def test_error_contains_and_expect_error(tmp_path):
    _, axis = load_known([write(tmp_path, "mine.yaml", GOOD_YAML)])
    raised = dict(api="mykernel.lse", status="error", actual=None)
    assert axis.matches(finding(**raised, error="ValueError: scalar input"))
    assert not axis.matches(finding(**raised, error="ValueError: axis 3"))
    assert not axis.matches(finding(**raised, error="ValueError: scalar", expect_error=True))


def test_a_list_at_the_top_is_a_yaml_known_file_too(tmp_path):
    text = GOOD_YAML.replace("entries:\n", "").replace("\n  ", "\n")
    assert [k.id for k in load_known([write(tmp_path, "mine.yml", text)])] == [
        "mykernel-half-grad",
        "mykernel-rejects-axis",
    ]


def test_python_entries_load_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")  # not importable from sys.path or the working folder
    (wide,) = load_known([write(tmp_path, "my_known.py", GOOD_PY)])
    assert isinstance(wide, Known) and wide.apis == ("mykernel.xent",)
    assert wide.matches(finding())
    assert not wide.matches(finding(inputs={"logits": np.zeros((2, 3))}))


def test_explain_tries_built_ins_first_then_the_users_entries(tmp_path, monkeypatch):
    import xentcheck.known

    mine = load_known([write(tmp_path, "mine.yaml", GOOD_YAML)])
    assert explain(finding()) is None
    assert explain(finding(), extra=mine).id == "mykernel-half-grad"
    # an entry of another framework is passed over
    assert explain(finding(framework="torch"), extra=mine) is None
    # a finding a built-in entry explains keeps the built-in's id
    builtin = Known(id="builtin", framework="mykernel", apis=("mykernel.*",), explanation="b",
                    link="l", when=lambda f: f.dtype == "float16")  # fmt: skip
    monkeypatch.setitem(xentcheck.known._cache, "mykernel", [builtin])
    assert explain(finding(), extra=mine).id == "builtin"
    assert explain(finding(dtype="bfloat16"), extra=mine).id == "mykernel-half-grad"


def test_conditions_is_the_predicate_of_a_yaml_entry(tmp_path):
    half, _ = load_known([write(tmp_path, "mine.yaml", GOOD_YAML)])
    assert isinstance(half.when, Conditions)
    assert half.when.dtype == ("float16", "bfloat16")


ENTRY = """\
- id: e1
  framework: mykernel
  apis: [mykernel.xent]
  explanation: x
  link: https://example.org
  when: {dtype: float16}
"""

#: (test id, file name, text, line, the words of the reason) of files load_known refuses;
#: tests/test_cli.py runs each through the command line too
BAD: list[tuple[str, str, str, int | None, str]] = [
    ("unknown-key", "k.yaml", ENTRY + "  flavour: sweet\n", 7,
     "unknown key 'flavour' (an entry has id, framework, apis"),
    ("unknown-condition", "k.yaml", ENTRY.replace("{dtype: float16}", "{dtyp: float16}"), 6,
     "unknown condition 'dtyp' (use dtype,"),
    ("status-in-when", "k.yaml", ENTRY.replace("{dtype: float16}", "{status: mismatch}"), 6,
     "'status' is not a condition (list the statuses in the entry's own 'statuses' field)"),
    ("missing-fields", "k.yaml", "\n".join(ENTRY.splitlines()[:3]) + "\n", 1,
     "entry lacks explanation, link, when (add them)"),
    ("no-when", "k.yaml", "\n".join(ENTRY.splitlines()[:5]) + "\n", 1,
     "entry lacks when (add it)"),
    ("empty-when", "k.yaml", ENTRY.replace("{dtype: float16}", "{}"), 6,
     "'when' is empty; state when the difference occurs"),
    ("bad-dtype", "k.yaml", ENTRY.replace("{dtype: float16}", "{dtype: [fp16]}"), 6,
     "when.dtype: 'fp16' is not one of float64, float32, float16, bfloat16"),
    ("bad-versions", "k.yaml", ENTRY + "  versions: '>>2'\n", 7,
     "versions versions='>>2': not a version range"),
    ("bad-status", "k.yaml", ENTRY + "  statuses: [crash]\n", 7,
     "statuses 'crash': statuses are some of mismatch, nonfinite, error"),
    ("duplicate-id", "k.yaml", ENTRY + ENTRY, 7,
     "id 'e1' is already used at {path}:1 (give each entry its own id)"),
    ("built-in-id", "k.yaml", ENTRY.replace("id: e1", "id: jax-negative-label-wraps"), 1,
     "id 'jax-negative-label-wraps' is a built-in entry of jax (choose another id)"),
    ("invalid-yaml", "k.yaml", ENTRY + "  - [\n", 7, "invalid YAML"),
    ("alias", "k.yaml", ENTRY.replace("[mykernel.xent]", "&a [mykernel.xent]")
     + ENTRY.replace("e1", "e2").replace("[mykernel.xent]", "*a"), 9,
     "aliases (*name) are not supported (write it out)"),
    ("no-entries", "k.yaml", "entries: []\n", 1, "no entries"),
    ("py-no-entries", "k.py", "from xentcheck.known import Known\n", None,
     "no ENTRIES (define ENTRIES = [Known(...), ...]"),
    ("py-not-known", "k.py", "x = 1\nENTRIES = [dict(id='a')]\n", 2,
     "ENTRIES holds dict, not Known"),
    ("py-raises", "k.py", "import math\n\nENTRIES = [math.sqrt(-1)]\n", 3,
     "importing it raised ValueError: math domain error (fix the file)"),
    ("py-syntax", "k.py", "ENTRIES = [\n", 1, "invalid Python: '[' was never closed"),
    ("py-bad-versions", "k.py", GOOD_PY.replace('explanation=', 'versions=">>2", explanation='),
     9, "importing it raised ValueError: versions='>>2': not a version range"),
    ("py-apis-text", "k.py", GOOD_PY.replace('["mykernel.xent"]', '"mykernel.xent"'), 9,
     "entry 'mykernel-wide': apis must be a non-empty list of names"),
    ("missing-file", "absent.yaml", None, None,
     "no such known-differences file (check the path)"),
]  # fmt: skip


def bad_file(tmp_path: Path, name: str, text: str | None) -> Path:
    """The file of a BAD row (not created when ``text`` is None)."""
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text", "line", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_known_files_are_one_line_with_file_and_line(tmp_path, name, text, line, words):
    path = bad_file(tmp_path, name, text)
    with pytest.raises(KnownFileError) as caught:
        load_known([path])
    message = str(caught.value)
    where = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(where), message
    assert words.format(path=path) in message, message
    assert "\n" not in message


def test_an_id_used_in_two_files_names_the_first(tmp_path):
    first = write(tmp_path, "a.yaml", ENTRY)
    second = write(tmp_path, "b.yaml", "# the same id\n" + ENTRY)
    with pytest.raises(KnownFileError) as caught:
        load_known([first, second])
    assert str(caught.value) == (
        f"{second}:2: id 'e1' is already used at {first}:1 (give each entry its own id)"
    )
