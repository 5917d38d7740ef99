"""Write ``tests/golden/shares.npz``: every array of every case in ``cases.py``.

Regenerate it only when an issue changes the random draws or the arithmetic on purpose, and say so
in the commit::

    python tests/golden/make_golden.py

The file in the repository was made before the layout move (issue #20), with the flat layout of
commit daaf80a on the path: ``PYTHONPATH=<that checkout> python tests/golden/make_golden.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "shares.npz")
META = "__meta__"  # a JSON string: where and with what the file was made

if __package__ in (None, ""):  # run as a script: import ``golden`` from tests/, as pytest does
    sys.path.insert(0, os.path.dirname(HERE))
from golden import cases  # noqa: E402


def key(case: str, name: str) -> str:
    """The file's key of array ``name`` of ``case``."""
    return f"{case}.{name}"


def _commit(root: str) -> str:
    """The commit of the jaxmpc tree at ``root`` (``+dirty`` with uncommitted changes), if in git."""
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main() -> None:
    cases.configure()
    import jax
    import jaxmpc

    arrays = {}
    for case, fn in cases.CASES.items():
        for name, value in fn().items():
            arrays[key(case, name)] = value
    # every jaxmpc module must come from one tree (an editable install can lend another's)
    root = os.path.dirname(os.path.abspath(jaxmpc.__file__))
    foreign = sorted(m for m, mod in list(sys.modules.items())
                     if (m == "jaxmpc" or m.startswith("jaxmpc."))
                     and getattr(mod, "__file__", None)
                     and not os.path.abspath(mod.__file__).startswith(root + os.sep))
    if foreign:
        raise SystemExit(f"jaxmpc modules from outside {root}: {foreign}")
    meta = {"commit": _commit(root), "jax": jax.__version__, "numpy": np.__version__,
            "layout": "new" if hasattr(jaxmpc, "tasks") else "old (flat)"}
    np.savez_compressed(PATH, **{META: np.array(json.dumps(meta))}, **arrays)
    print(f"wrote {PATH}: {len(cases.CASES)} cases, {len(arrays)} arrays, "
          f"{os.path.getsize(PATH)} bytes ({meta})")


if __name__ == "__main__":
    main()
