"""Print jaxmpc's import graph by folder and check the layering.

    .venv/bin/python experiments/imports.py            # the folder graph, and every violation (exit 1 if any)
    .venv/bin/python experiments/imports.py --modules  # module by module

Rules checked (from the source, with ``ast``; nothing is imported): a folder imports only from
folders before it in ``LAYERS`` (or itself), no module imports another module's private name
(``from .x import _y``), the module graph has no cycle (imports inside functions count), and
nothing above ``protocols`` imports a protocol family (``jaxmpc.protocols.<family>``): comparison,
approximations, layers, losses, optimizers and runners are written once against the interface
(``protocols.interface``, ``protocols.shared``, ``protocols.arith``).
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import sys

LAYERS = ("errors", "core", "trace", "protocols", "ops", "nn", "run", "tasks")
GENERIC = ("protocols", "protocols.interface", "protocols.shared",
           "protocols.arith")  # what the folders above protocols may import from it
PKG = pathlib.Path(__file__).resolve().parent.parent / "jaxmpc"


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _resolve(mod: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = mod.split(".") if mod else []
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def edges(mods: dict[str, pathlib.Path]):
    """(importer, imported module, names, line) for every import of a jaxmpc module."""
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    target = _resolve(mod, is_pkg, node.level, node.module)
                elif node.module and node.module.split(".")[0] == "jaxmpc":
                    target = node.module[len("jaxmpc."):] if "." in node.module else ""
                else:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    if sub in mods:  # `from . import ring` imports a module
                        yield mod, sub, [], node.lineno
                    else:
                        yield mod, target, [alias.name], node.lineno


def folder(mod: str) -> str:
    return mod.split(".")[0] if mod else ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modules", action="store_true", help="print the module graph too")
    args = p.parse_args(argv)
    mods = modules()
    problems, graph, fgraph = [], {}, {}
    for src, dst, names, line in edges(mods):
        graph.setdefault(src, set()).add(dst)
        fs, fd = folder(src), folder(dst)
        if fs and fd and fs != fd:
            fgraph.setdefault(fs, set()).add(fd)
            if fs in LAYERS and fd in LAYERS and LAYERS.index(fd) > LAYERS.index(fs):
                problems.append(f"{src}:{line} imports {dst}: folder {fs} imports {fd}, which is above it")
        if (fd == "protocols" and fs in LAYERS and LAYERS.index(fs) > LAYERS.index("protocols")
                and dst not in GENERIC):
            problems.append(f"{src}:{line} imports {dst}: above protocols, code is written against "
                            "the interface, not a family")
        for n in names:
            if n.startswith("_") and dst != src:
                problems.append(f"{src}:{line} imports the private name {n} of {dst}")
    # cycles between modules (a package importing its own submodules is not one)
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d == m or d == "" or d.startswith(m + ".") or m.startswith(d + "."):
                continue
            if state.get(d) == 1:
                problems.append("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    print("folder graph (folder: the folders it imports):")
    for f in LAYERS:
        if f in fgraph or f in {folder(m) for m in mods}:
            print(f"  {f:10s} {', '.join(sorted(fgraph.get(f, ()), key=LAYERS.index)) or '-'}")
    if args.modules:
        print("module graph:")
        for m in sorted(graph):
            print(f"  {m or 'jaxmpc'}: {', '.join(sorted(d or 'jaxmpc' for d in graph[m] if d != m))}")
    print(f"{len(mods)} modules; " + (f"{len(problems)} problems:" if problems else "no problems"))
    for pr in problems:
        print("  " + pr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
