"""The real reference agrees with the oracle: :func:`reference_disagreements` is ``[]``.

For every loss of the registry (a new loss without an oracle, or without a strategy,
fails here), on drawn instances over every parameter the registry lists: moderate
values, then extreme ones (+-1e4, +-700, 1e-300, subnormals, +-inf logits,
probabilities 0 and 1, ties), less the regions of the known reference bugs
(``known_bugs.py``, each asserted in ``test_known_bugs.py``). A drawn input the
reference rejects gives ``[]`` by definition; the test asserts that most draws are
accepted, so it checks something.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings

from tests.exact.known_bugs import known_reference_bug
from tests.exact.strategies import instances
from xentcheck.exact import ORACLES, reference_disagreements
from xentcheck.reference import LOSSES, check

EXAMPLES = 60


def _agrees(loss: str, inputs: dict, params: dict) -> bool:
    """Assert no disagreement; return whether the reference accepts the input."""
    found = reference_disagreements(loss, inputs, params)
    assert found == [], f"{loss} {params} {inputs}"
    try:
        check(loss, inputs, params)
    except ValueError:
        return False
    return True


def test_every_loss_of_the_registry_has_an_oracle():
    assert set(ORACLES) == set(LOSSES)


@pytest.mark.parametrize("values", ["ordinary", "extreme"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_the_reference_agrees_with_the_oracle(loss: str, values: str) -> None:
    accepted = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(instances(loss, values))
    def run(instance):
        assume(not known_reference_bug(loss, *instance))
        accepted.append(_agrees(loss, *instance))

    run()
    assert sum(accepted) >= len(accepted) // 2, "most drawn instances should be defined"
