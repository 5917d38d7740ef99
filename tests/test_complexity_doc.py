"""docs/complexity.md is generated from the code (jaxmpc.tasks.complexity): it must equal a fresh
generation, and every family's Kernel.formula must equal the traced jaxmpc.cost of its calls.

The tables are generated once (abstract inputs: only tracing) and shared by the tests.
"""
import os

import jax
import pytest

import jaxmpc
from jaxmpc.protocols import interface
from jaxmpc.tasks import complexity, tutorial

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DOC = os.path.join(ROOT, "docs", "complexity.md")


@pytest.fixture(scope="module")
def doc():
    return complexity.generate()


def _on_disk():
    with open(DOC) as f:
        return f.read()


def test_doc_is_fresh(doc):
    problems = complexity.problems(doc, _on_disk())
    assert not problems, problems


def test_a_modified_doc_is_stale(doc):
    text = doc.text.replace("| 8192 |", "| 8193 |", 1)
    assert text != doc.text
    msg = complexity.problems(doc, text)
    assert "is stale" in msg and "-| `open` (via `reveal`) | (1024,) | 1 | 8193 |" in msg
    assert complexity.COMMAND in msg
    assert "is missing" in complexity.problems(doc, None)


def test_the_header_says_how_to_regenerate(doc):
    head = "".join(doc.text.splitlines(keepends=True)[:6])
    assert "do not edit it by hand. Regenerate it with" in head and f"\n    {complexity.COMMAND}\n" in head


def test_formulas_equal_the_tallies(doc):
    bad = doc.mismatches()
    assert not bad, "\n".join(bad)


def test_every_family_and_kernel_is_in_the_doc(doc):
    """Each registered family has a section per ring, and each kernel's formula is checked by a row."""
    for name in interface.names():
        fam = interface.family(name)
        for bits in fam.rings:
            assert f"## `{name}` over Z_2^{bits}" in doc.text
            checked = {t[0] for r in doc.rows if (r.family, r.ring_bits) == (name, bits)
                       for t in r.case.terms if any(r.formula[n] is not None for n in complexity.PARTIES)}
            with_formula = {k for k in interface.KERNELS if fam.kernels[k].formula is not None}
            assert with_formula <= checked, with_formula - checked
    assert all(interface.family("additive").kernels[k].formula is not None for k in interface.KERNELS)


def test_kernel_rounds_equal_the_tallies(doc):
    """Where a kernel gives ``Kernel.rounds`` (used by layers to size their round counts), it equals
    the traced rounds of the rows that are that kernel alone."""
    checked = 0
    for r in doc.rows:
        if len(r.case.terms) != 1:
            continue
        k = interface.family(r.family).kernels[r.case.terms[0][0]]
        for n in complexity.PARTIES:
            if k.rounds is not None and r.traced[n] is not None:
                assert r.traced[n][0] == k.rounds(n, r.ring_bits), (r.case.name, n, r.ring_bits)
                checked += 1
    assert checked >= 3 * len(complexity.PARTIES)


def test_a_wrong_formula_is_detected():
    """Control: a row whose terms are wrong (one element too many) is reported with its figures."""
    wrong = complexity.Case("open", "(8,)", lambda p: (jaxmpc.reveal, (complexity._sds(p, (8,)),)),
                            (("open", 9),))
    (row,) = complexity.measure_rows(interface.family("additive"), 64, [wrong])
    lines = row.mismatches()
    assert len(lines) == len(complexity.PARTIES)
    assert "2 parties: traced (1, 64, 0), formula `open`(9) = (1, 72, 0)" in lines[0]
    assert "DIFFERS at 2p (1 / 72 / 0)" in row.check()


def test_the_seed_run_costs_its_steps(doc):
    """The header's claim: the whole seed run is ITERATIONS times the one-step row (sharing is free)."""
    step = next(r for r in doc.rows if r.case.name == "seed task: one training step")
    r = jaxmpc.cost(lambda k: tutorial.run(k, 3), jax.random.key(0))
    k = tutorial.ITERATIONS
    assert (r.rounds, r.bytes_per_party, r.dealer_bytes_per_party) == tuple(k * v for v in step.traced[2])


def _script():
    import complexity as script  # experiments/complexity.py (experiments/ is on sys.path: conftest.py)

    return script


def test_the_script_writes_and_checks(doc, tmp_path, monkeypatch, capsys):
    script = _script()
    monkeypatch.setattr(script.complexity, "generate", lambda: doc)  # reuse the fixture's tables
    out = str(tmp_path / "complexity.md")
    assert script.main(["--check", "--out", out]) == 1 and "is missing" in capsys.readouterr().err
    assert script.main(["--out", out]) == 0
    assert open(out).read() == doc.text
    assert script.main(["--check", "--out", out]) == 0
    with open(out, "a") as f:
        f.write("edited by hand\n")
    assert script.main(["--check", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "-edited by hand" in err and complexity.COMMAND in err
