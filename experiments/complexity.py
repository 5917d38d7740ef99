"""Write docs/complexity.md: rounds and bytes of every kernel and public protocol, per protocol family,
at 2, 3 and 5 parties, from jaxmpc.cost on abstract inputs (the tables are jaxmpc.tasks.complexity's).

    .venv/bin/python experiments/complexity.py            # (re)write docs/complexity.md
    .venv/bin/python experiments/complexity.py --check    # exit 1 with a diff if it is stale

Both exit 1 when a family's Kernel.formula differs from the traced cost (the file is written anyway).
"""
from __future__ import annotations

import argparse
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

from jaxmpc.tasks import complexity  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))

DOC = os.path.normpath(os.path.join(_HERE, "..", "docs", "complexity.md"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true",
                   help="do not write: exit 1 and print a diff when the file differs from the code")
    p.add_argument("--out", default=DOC, help="the file (default: docs/complexity.md)")
    args = p.parse_args(argv)
    doc = complexity.generate()
    if args.check:
        on_disk = open(args.out).read() if os.path.exists(args.out) else None
        problems = complexity.problems(doc, on_disk, args.out)
        if problems:
            print(problems, file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    with open(args.out, "w") as f:
        f.write(doc.text)
    print(f"wrote {args.out}")
    problems = complexity.problems(doc, doc.text, args.out)
    if problems:
        print(problems, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
