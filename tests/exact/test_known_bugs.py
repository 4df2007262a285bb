"""Each known reference bug (``known_bugs.py``) is still reported, on the quantity named.

When the reference is fixed, its entry fails here: delete it, and its region in
:func:`tests.exact.known_bugs.known_reference_bug`, so the drawn tests cover it again.
"""

from __future__ import annotations

import pytest

from tests.exact.known_bugs import KNOWN, known_reference_bug
from xentcheck.exact import reference_disagreements


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_oracle_reports_the_known_reference_bug(name: str) -> None:
    loss, inputs, params, quantity, why = KNOWN[name]
    found = reference_disagreements(loss, inputs, params)
    assert quantity in {d.quantity for d in found}, why
    assert known_reference_bug(loss, inputs, params) or loss == (
        "binary_cross_entropy_with_logits"  # no drawn target is infinite
    )
