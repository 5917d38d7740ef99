"""What the experiment scripts share: the --protocol / --ring options, the truncation choices, the configuration check,
JSON writing and the progress bar.

A sibling module of the scripts: run as ``.venv/bin/python experiments/X.py``, a script's folder is
first on ``sys.path``, so ``import common`` finds this file (the tests put ``experiments/`` on
``sys.path`` in ``tests/conftest.py``). It imports jaxmpc only, the installed package.
"""
from __future__ import annotations

import argparse
import json
import sys

import jaxmpc
from jaxmpc.protocols import interface


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """``--protocol NAME`` (the registered families) and ``--ring BITS`` (the ring width)."""
    names = interface.names()
    rings = sorted({r for n in names for r in interface.family(n).rings})
    p.add_argument("--protocol", default="additive", choices=names,
                   help="protocol family that shares every value (jaxmpc.share(..., protocol=NAME)); "
                        "default additive")
    p.add_argument("--ring", type=int, default=64, metavar="BITS",
                   help="ring width in bits, Z_2^BITS (jaxmpc.share(..., ring=BITS)); supported: "
                        + ", ".join(map(str, rings)) + " (default 64)")


def default_parties(protocol: str, parties: int | None) -> int:
    """``parties``, or where it is ``None`` (``--parties`` not given) the smallest party count the
    protocol family runs among (additive: 2, replicated: 3)."""
    return interface.family(protocol).min_parties if parties is None else parties


def truncations() -> tuple[str, ...]:
    """``"default"`` (each family's own default: additive ``dealer``, replicated ``share``) and every
    truncation option of the registered families (``config.check`` then says which the chosen
    protocol offers at the chosen party count)."""
    out = [interface.DEFAULT_TRUNCATION]
    for n in interface.names():
        out += [t for t in interface.family(n).truncations if t not in out]
    return tuple(out)


def protocol_fields(args) -> dict:
    """``{"protocol": ..., "ring": ...}``, the fields every script's JSON records."""
    return {"protocol": args.protocol, "ring": args.ring}


def check_config(**config) -> None:
    """:func:`jaxmpc.config.check` of the options (``n_parties``, ``truncation``, ``base``,
    ``precisions``, ``protocol``, ``ring``); exits with ``invalid options: <the error>`` (what was
    expected, what came, the fix) before any work."""
    try:
        jaxmpc.config.check(**config)
    except jaxmpc.JaxMPCError as e:
        sys.exit(f"invalid options: {e}")


def write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON (indent 1) and say so."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    print(f"wrote {path}")


def progress(iterable, total: int, desc: str, quiet: bool = False, **options):
    """A tqdm progress bar over ``iterable`` when tqdm is installed and not ``quiet``, else
    ``iterable`` itself (progress bars are optional)."""
    if quiet:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, **options)
