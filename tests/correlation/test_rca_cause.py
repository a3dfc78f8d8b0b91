"""Root-cause hypotheses: the cause counts every later event that depends on it (it had counted the capped
evidence list), and a low-ranked one keeps a non-zero confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.correlation.rca import _downstream, shown_confidence


def test_the_count_of_dependent_events_is_not_capped_by_the_evidence_list() -> None:
    n = 40
    w = np.zeros((n, n))
    for k in range(n - 1):  # a chain 0 → 1 → ... → 39
        w[k, k + 1] = 1.0
    ev = pd.DataFrame({"event_id": [f"e{k}" for k in range(n)]})
    evidence, later = _downstream(0, w, ev)
    assert evidence == [f"e{k}" for k in range(25)] and later == n - 1  # had been 24, the list's length - 1
    assert _downstream(n - 2, w, ev) == (["e38", "e39"], 1)
    assert _downstream(n - 1, w, ev) == (["e39"], 0)


def test_a_low_ranked_hypothesis_does_not_read_as_confidence_zero() -> None:
    assert shown_confidence(3.7e-06) == 3.7e-06 and shown_confidence(5.287e-05) == 5.287e-05  # had been 0.0
    assert shown_confidence(0.98765) == 0.9877 and shown_confidence(1.0) == 1.0
