"""Golden shares: the raw shares of small deterministic runs, bit for bit against tests/golden/shares.npz.

The file was taken before the layout move (issue #20) with the flat layout; the cases
(``tests/golden/cases.py``: sharing, mul, matmul, relu, the Beaver convolution and the Conv2d layer,
the seed tutorial, a digits training step; 2, 3 and 5 parties) run here with the current code.
"""
import json

import numpy as np
import pytest

from golden import cases
from golden.make_golden import META, PATH, key


@pytest.fixture(scope="module")
def golden():
    with np.load(PATH) as f:
        return {k: f[k] for k in f.files}


def _explain(golden, what: str) -> str:
    meta = json.loads(str(golden[META]))
    return (f"{what} differs from the golden file tests/golden/shares.npz (made with {meta}). A "
            "difference means the random draws (keys, their splits, the dealer's masks and triples) "
            "or the arithmetic changed. Regenerate the file only when an issue changes the draws on "
            "purpose: run `python tests/golden/make_golden.py` and say so in the commit.")


def test_golden_file_has_every_case(golden):
    stored = {k.split(".", 1)[0] for k in golden if k != META}
    assert stored == set(cases.CASES), _explain(golden, "the set of cases")


@pytest.mark.parametrize("case", list(cases.CASES))
def test_golden(golden, case):
    got = cases.CASES[case]()
    want = {k.split(".", 1)[1]: v for k, v in golden.items() if k.split(".", 1)[0] == case}
    assert sorted(got) == sorted(want), _explain(golden, f"{case}: the arrays' names")
    for name, value in got.items():
        np.testing.assert_array_equal(value, want[name], strict=True,  # shapes and dtypes too
                                      err_msg=_explain(golden, f"{key(case, name)}"))
