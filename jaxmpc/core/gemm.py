r"""Exact matrix products modulo 2^64 of ``uint64`` arrays (and modulo 2^32 of ``uint32`` ones), built
from fast floating-point GEMMs.

XLA multiplies ``uint64`` matrices with a naive loop (on CPU, many times slower than a float32
GEMM of the same shape, and more so as the matrices grow). :func:`matmul` computes the same bits
from a few GEMMs that the hardware does fast. ``experiments/bench_gemm.py`` times every method per
shape against float32 and XLA's loop.

Maths. Write each ring element in balanced (signed) digits of widths :math:`w_0, w_1, \dots` at
offsets :math:`o_i = w_0 + \dots + w_{i-1}`, :math:`\sum_i w_i = 64`:

.. math::  a \equiv \sum_i a_i 2^{o_i} \pmod{2^{64}}, \qquad -2^{w_i-1} \le a_i < 2^{w_i-1}.

The digits are read off :math:`a + H`, :math:`H = \sum_i 2^{o_i + w_i - 1}` (one wrapping add):
the unsigned digit :math:`u_i` of :math:`a + H` gives :math:`a_i = u_i - 2^{w_i-1}`. Then

.. math::  AB \equiv \sum_{o_i + o_j < 64} 2^{o_i + o_j} A_i B_j \pmod{2^{64}},

since every digit product with :math:`o_i + o_j \ge 64` vanishes mod 2^64. A GEMM is exact when
every partial sum of its accumulator is an integer that it represents exactly:
:math:`|s| \le 2^{53}` (float64), :math:`2^{24}` (float32), :math:`2^{31} - 1` (int32). With
balanced digits each term :math:`|A_{i,mk} B_{j,kn}| \le 2^{w_i - 1} 2^{w_j - 1}`, so the inner
dimension is cut into :math:`C = \lceil k / k_{max} \rceil` equal chunks of at most
:math:`k_{max} = \lfloor \text{exact} / \max|\text{term}| \rfloor` terms (zero-padded). Whatever
order the GEMM adds in, every partial sum is then exact. All products and chunks run as ONE batched
GEMM ``[P, C, m, ch] @ [P, C, ch, n]``; each exact chunk result is converted to ``int64``, read as
``uint64`` (two's complement) and combined as :math:`\sum_p c_p \sum_C P_{p,C} \bmod 2^{64}`.

Methods (``method=``):

* ``"xla"``: ``jnp.matmul(a, b, preferred_element_type=uint64)``, XLA's integer loop; the fastest
  for small or skinny products (see :func:`choose_method`).
* ``"f64"``: 3 digits of 22/21/21 bits (offsets 0, 22, 43) as float64; 5 products (Karatsuba on
  the shift-22 pair, reusing the two products needed anyway):

  .. math::  AB \equiv P_{00} + (K - P_{00} - P_{11})\, 2^{22} + (A_0 B_2 + A_2 B_0)\, 2^{43}
             + P_{11}\, 2^{44}, \qquad K = (A_0 + A_1)(B_0 + B_1),

  i.e. weights :math:`1 - 2^{22}, 2^{22}, 2^{44} - 2^{22}, 2^{43}, 2^{43}` on
  :math:`P_{00}, K, P_{11}, A_0 B_2, A_2 B_0`. Terms: :math:`|A_0 B_0| \le 2^{42}`,
  :math:`|K| \le (2^{21} + 2^{20})^2 = 9 \cdot 2^{40}`, the others :math:`\le 2^{41}`, so
  :math:`k_{max} = \lfloor 2^{53} / (9 \cdot 2^{40}) \rfloor = 910`. Cost: 5 float64
  :math:`mnk` GEMMs (one batched call); the plain split needs 6 (and measured slower).
* ``"i8"``: 8 digits of 8 bits as int8 (balanced digits fit int8 exactly), int32 accumulation;
  the 36 products with :math:`i + j \le 7`, terms :math:`\le 2^{14}`, :math:`k_{max} = 131071`
  (in practice never chunked). Cost: 36 int8 :math:`mnk` GEMMs. For hardware with fast int8 GEMMs
  (TPU MXU); on the CPUs measured an int8 GEMM ran no faster than float32, so it loses to f64.
  **Not on GPUs** (refused there, see :func:`methods`): XLA's GPU int8 GEMM (JAX 0.11.2, NVIDIA
  H200) returned exactly twice the true product for some shapes, e.g. ``(5, 7) @ (7, 3)`` and
  ``(64, 64) @ (64, 64)`` (each one batched call of 36 int8 GEMMs), while 128^3 to 2048^3 were
  exact; with XLA's Triton GEMMs switched off, cuBLASLt had no int8 kernel for the batched call.
* ``"f32"``: the same 8-bit digits as float32 (HIGHEST precision, so no TF32 on GPUs), exact to
  :math:`2^{24}`: :math:`k_{max} = 1024`. Cost: 36 float32 :math:`mnk` GEMMs. For hardware with
  fast float32 but slow float64 and no int8 GEMMs; the slowest of the three on CPU.

Z_2^32 (``uint32`` operands, :func:`scheme` with ``bits=32``): the same construction with
:math:`\sum_i w_i = 32`. ``"f64"``: two 16-bit digits, 3 products (:math:`P_{00}`, and
:math:`A_0 B_1`, :math:`A_1 B_0` at weight :math:`2^{16}`; :math:`A_1 B_1` vanishes), terms
:math:`\le 2^{30}`, so :math:`k_{max} = 2^{23}`: 3 float64 GEMMs where :math:`\mathbb{Z}_{2^{64}}`
needs 5. ``"i8"`` / ``"f32"``: four 8-bit digits, 10 products.

Automatic choice (``method=None``): :func:`choose_method`, from the backend and the static shapes.

Example:
    >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
    >>> a = jnp.full((2, 3), 2**64 - 1, jnp.uint64)  # -1 in the ring
    >>> b = jnp.arange(12, dtype=jnp.uint64).reshape(3, 4)
    >>> ref = jnp.matmul(a, b, preferred_element_type=jnp.uint64)
    >>> bool((matmul(a, b, method="f64") == ref).all())
    True
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import ring
from ..errors import InputTypeError, ProtocolError, ShareMismatchError

_U64 = jnp.uint64
_I64 = jnp.int64
_MOD = 1 << 64


@dataclasses.dataclass(frozen=True)
class _Scheme:
    """A limb split: digit widths, the GEMM dtype and accumulator, the exactness bound, and the
    products ``(lhs, rhs, weight)``: the result is ``sum_p weight_p (L_p @ R_p) mod 2^64`` where
    ``L_p``, ``R_p`` are integer combinations of digits, tuples of ``(digit index, coefficient)``."""
    dtype: object
    acc: object
    widths: tuple
    exact: int
    products: tuple

    @property
    def offsets(self) -> tuple:
        return tuple(int(x) for x in np.cumsum((0,) + self.widths[:-1]))

    def digit_bound(self, combo) -> int:
        """The largest ``|sum_i c_i a_i|`` over balanced digits ``-2^(w_i-1) <= a_i < 2^(w_i-1)``."""
        return sum(abs(c) << (self.widths[i] - 1) for i, c in combo)

    @property
    def max_chunk(self) -> int:
        """Most inner terms one exact accumulation may hold (the same for every product)."""
        return self.exact // max(self.digit_bound(l) * self.digit_bound(r)
                                 for l, r, _ in self.products)


def _schoolbook(widths, dtype, acc, exact) -> _Scheme:
    """All digit products with shift ``o_i + o_j < l`` (``l = sum(widths)``, the ring's width)."""
    offs = np.cumsum((0,) + tuple(widths[:-1]))
    bits = sum(widths)
    prods = tuple((((i, 1),), ((j, 1),), 1 << int(oi + oj))
                  for i, oi in enumerate(offs) for j, oj in enumerate(offs) if oi + oj < bits)
    return _Scheme(dtype, acc, tuple(widths), exact, prods)


# f64 with Karatsuba on the shift-22 pair: A0 B1 + A1 B0 = (A0 + A1)(B0 + B1) - A0 B0 - A1 B1.
_D0, _D1, _D2, _D01 = ((0, 1),), ((1, 1),), ((2, 1),), ((0, 1), (1, 1))
_F64 = _Scheme(jnp.float64, jnp.float64, (22, 21, 21), 1 << 53, (
    (_D0, _D0, (1 - (1 << 22)) % _MOD),
    (_D01, _D01, 1 << 22),
    (_D1, _D1, ((1 << 44) - (1 << 22)) % _MOD),
    (_D0, _D2, 1 << 43),
    (_D2, _D0, 1 << 43),
))

SCHEMES = {
    "f64": _F64,
    "i8": _schoolbook((8,) * 8, jnp.int8, jnp.int32, (1 << 31) - 1),
    "f32": _schoolbook((8,) * 8, jnp.float32, jnp.float32, 1 << 24),
}
# Z_2^32: two 16-bit digits as float64 (3 products: the 2^32 one vanishes; terms <= 2^30, so
# k_max = 2^23), or four 8-bit digits (10 products)
SCHEMES_32 = {
    "f64": _schoolbook((16, 16), jnp.float64, jnp.float64, 1 << 53),
    "i8": _schoolbook((8,) * 4, jnp.int8, jnp.int32, (1 << 31) - 1),
    "f32": _schoolbook((8,) * 4, jnp.float32, jnp.float32, 1 << 24),
}
METHODS = ("xla",) + tuple(SCHEMES)


def scheme(method: str, bits: int = 64) -> _Scheme:
    """The limb split of ``method`` for :math:`\\mathbb{Z}_{2^{bits}}` (64 or 32)."""
    return (SCHEMES_32 if bits == 32 else SCHEMES)[method]

# CPU crossover, chosen from experiments/bench_gemm.py on a 2-core CPU: XLA's integer loop is fast
# while a column of ``b`` stays in cache (small ``n`` or ``k``), and the digit split costs
# O(P (mk + kn + mn)) elementwise work that only pays off once every dimension is moderate.
CPU_MIN_M, CPU_MIN_KN, CPU_MIN_MACS = 16, 64, 1 << 19


def choose_method(m: int, k: int, n: int, batch: int = 1, backend: str | None = None) -> str:
    """The method ``method=None`` picks for a product ``(batch, m, k) @ (batch, k, n)``.

    CPU: ``"f64"`` if ``m >= 16``, ``k >= 64``, ``n >= 64`` and ``batch m k n >= 2^19``, else
    ``"xla"`` (chosen from ``experiments/bench_gemm.py``: below the thresholds ``"xla"`` wins or
    ties on most shapes, e.g. (1024, 1024, 1), (1024, 32, 1024), (128, 128, 10); above them
    ``"f64"`` wins, e.g. on (64, 128, 64), (128, 64, 128), (256, 64, 256), (16, 2048, 1024) and
    cubes from 128^3, by more the larger the product; it loses a little on a few shapes just above,
    80^3 to 112^3 and (1024, 64, 64)). GPU: ``"f64"`` (on an NVIDIA H200, with the same script, it
    ties ``"xla"`` up to 512^3 and wins from 1024^3 up, by more the larger the product). Other
    backends: ``"xla"``. A batch that reaches :func:`matmul` through ``jax.vmap`` is not seen here:
    the choice is made per example.
    """
    backend = backend or jax.default_backend()
    if backend == "cpu":
        big = m >= CPU_MIN_M and k >= CPU_MIN_KN and n >= CPU_MIN_KN
        return "f64" if big and batch * m * k * n >= CPU_MIN_MACS else "xla"
    if backend in ("gpu", "cuda", "rocm"):
        return "f64"
    return "xla"


_GPU_BACKENDS = ("gpu", "cuda", "rocm")


def methods(backend: str | None = None) -> tuple:
    """The methods that are exact on ``backend`` (default: JAX's default backend): all of
    ``METHODS``, except ``"i8"`` on a GPU (see the module docstring)."""
    backend = backend or jax.default_backend()
    return tuple(m for m in METHODS if not (m == "i8" and backend in _GPU_BACKENDS))


def _operands(v: jax.Array, scheme: _Scheme, side: int) -> jax.Array:
    """The stacked GEMM operands ``[P, *v.shape]`` (in ``scheme.dtype``) of ring words ``v``:
    for product ``p``, the combination ``scheme.products[p][side]`` of ``v``'s balanced digits.

    One elementwise expression over ``[P, *v.shape]``: term ``t`` of operand ``p`` is the digit
    ``((u >> o_{p,t}) & (2^{w_{p,t}} - 1)) - 2^{w_{p,t} - 1}`` of :math:`u = v + H`, with per-row
    constant shifts and masks (a missing term has mask 0 and offset 0). No per-operand pieces are
    stacked together: a concatenation fuses every producer's code once per piece, which costs
    compile time."""
    offs, widths = scheme.offsets, scheme.widths
    combos = [p[side] for p in scheme.products]
    n_terms = max(len(c) for c in combos)
    shape = (len(combos),) + (1,) * v.ndim
    words = np.dtype(v.dtype)
    half = sum(1 << (o + w - 1) for o, w in zip(offs, widths)) % (1 << sum(widths))
    u = (v + jnp.asarray(half, words))[None]  # digit i of u is a_i + 2^(w_i - 1)
    out = None
    for t in range(n_terms):
        terms = [c[t] if t < len(c) else None for c in combos]
        shift = np.array([0 if c is None else offs[c[0]] for c in terms], words)
        mask = np.array([0 if c is None else (1 << widths[c[0]]) - 1 for c in terms], words)
        bias = np.array([0 if c is None else 1 << (widths[c[0]] - 1) for c in terms], np.int64)
        coef = np.array([0 if c is None else c[1] for c in terms], np.int64)
        digit = (((u >> jnp.asarray(shift.reshape(shape))) & jnp.asarray(mask.reshape(shape))
                  ).astype(_I64) - jnp.asarray(bias.reshape(shape)))
        if not np.all((coef == 1) | (coef == 0)):
            digit = digit * jnp.asarray(coef.reshape(shape))
        out = digit if out is None else out + digit
    return out.astype(scheme.dtype)  # |operand| <= digit_bound: exact in dtype


def _limb_matmul(a: jax.Array, b: jax.Array, scheme: _Scheme, nb: int) -> jax.Array:
    """``a @ b mod 2^l`` for ring words ``a: [*batch, m, k]``, ``b: [*batch, k, n]`` with ``nb``
    batch dimensions (0 or 1): one batched GEMM over (product, batch, chunk)."""
    # The digit split reads each element 5-6 times: compute the operands once (see ring.materialize)
    a, b = ring.materialize(a), ring.materialize(b)
    lhs, rhs = _operands(a, scheme, 0), _operands(b, scheme, 1)  # [P, *b, m, k], [P, *b, k, n]
    k = a.shape[-1]
    n_chunks = max(1, -(-k // scheme.max_chunk))
    chunk = -(-k // n_chunks)
    pad = n_chunks * chunk - k
    if pad:
        lhs = jnp.pad(lhs, [(0, 0)] * (lhs.ndim - 1) + [(0, pad)])
        rhs = jnp.pad(rhs, [(0, 0)] * (rhs.ndim - 2) + [(0, pad), (0, 0)])
    lhs = lhs.reshape(lhs.shape[:-1] + (n_chunks, chunk))                 # [P, *b, m, C, ch]
    rhs = rhs.reshape(rhs.shape[:-2] + (n_chunks, chunk, rhs.shape[-1]))  # [P, *b, C, ch, n]
    lb = tuple(range(nb + 1))
    prec = lax.Precision.HIGHEST if jnp.issubdtype(scheme.dtype, jnp.floating) else None
    out = lax.dot_general(lhs, rhs, (((nb + 3,), (nb + 2,)), (lb + (nb + 2,), lb + (nb + 1,))),
                          precision=prec, preferred_element_type=scheme.acc)  # [P, *b, C, m, n]
    # Exact integers -> int64 -> ring words (the integer conversion wraps: two's complement).
    words = a.dtype
    out = lax.convert_element_type(out.astype(_I64), words)
    w = np.array([p[2] for p in scheme.products], words).reshape((-1,) + (1,) * (out.ndim - 1))
    return jnp.sum(out * jnp.asarray(w), axis=(0, nb + 1), dtype=words)


def matmul(a, b, *, method: str | None = None) -> jax.Array:
    """Ring matrix product ``a @ b`` modulo 2^64 (``uint64``) or 2^32 (``uint32``) with
    ``jnp.matmul`` shape rules, bit-exact.

    Args:
        a: ``uint64[..., m, k]`` or ``uint64[k]`` (or ``uint32``).
        b: ``uint64[..., k, n]`` or ``uint64[k]`` (the same word type); batch dimensions broadcast
            as in ``jnp.matmul``.
        method: ``None`` (automatic, :func:`choose_method`), or one of ``METHODS``:
            ``"xla"``, ``"f64"``, ``"i8"``, ``"f32"`` (see the module docstring); ``"i8"`` is
            refused on a GPU backend (:func:`methods` lists the exact ones).
    Returns:
        ``uint64`` array of ``jnp.matmul``'s output shape, equal to
        ``jnp.matmul(a, b, preferred_element_type=uint64)``.

    Works under ``jit`` and ``vmap`` (the method is chosen from static shapes).

    Example:
        >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
        >>> x = jnp.array([[1, 2**63], [3, 4]], jnp.uint64)
        >>> matmul(x, x, method="f64").tolist()
        [[9223372036854775809, 9223372036854775808], [15, 9223372036854775824]]
    """
    if method is not None and method not in METHODS:
        raise ProtocolError(f"matmul: method must be None (the automatic choice) or one of {METHODS}, got "
                            f"{method!r}.")
    if method is not None and method not in methods():
        raise ProtocolError(
            f"matmul(method={method!r}) is not exact on the {jax.default_backend()!r} backend: XLA's "
            "GPU int8 GEMM returned twice the true product for some shapes (JAX 0.11.2, NVIDIA H200). "
            f"Use one of {methods()}, or method=None (the automatic choice).")
    a, b = jnp.asarray(a), jnp.asarray(b)
    words = a.dtype if ring.is_ring_array(a) else _U64
    same_ring = ring.is_ring_array(a) and a.dtype == b.dtype
    if method == "xla" or (method is None and not same_ring):
        return jnp.matmul(a, b, preferred_element_type=words)
    if not same_ring:
        raise InputTypeError(
            f"matmul(method={method!r}) multiplies ring elements: both operands must be words of "
            f"one ring (uint64 or uint32), got {a.dtype} and {b.dtype}. Convert with "
            "jaxmpc.core.ring.const or use method='xla'.")
    if a.ndim == 0 or b.ndim == 0:
        raise ShareMismatchError(f"matmul: operands must be at least 1-d, got shapes {a.shape} and "
                                 f"{b.shape}; multiply by a scalar elementwise instead (a * b).")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
    if k != k2:
        raise ShareMismatchError(f"matmul: inner dimensions differ: shapes {a.shape} and {b.shape}: a's last "
                                 "axis must match b's second-to-last (b's only axis if b is 1-d).")
    try:
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ShareMismatchError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} do not broadcast "
                                 "(all axes but the last two must broadcast, as in jnp.matmul).") from None
    n_batch = math.prod(batch)
    fold = math.prod(b2.shape[:-2]) == 1  # b is one matrix: fold a's batch into its rows
    rows = math.prod(a2.shape[:-2]) * m
    if method is None:
        method = choose_method(rows, k, n) if fold else choose_method(m, k, n, n_batch)
        if method == "xla":
            return jnp.matmul(a, b, preferred_element_type=words)
    split = scheme(method, ring.bits_of(a))
    if fold:
        out = _limb_matmul(a2.reshape(rows, k), b2.reshape(k, n), split, 0)
    else:
        a3 = jnp.broadcast_to(a2, batch + (m, k)).reshape(n_batch, m, k)
        b3 = jnp.broadcast_to(b2, batch + (k, n)).reshape(n_batch, k, n)
        out = _limb_matmul(a3, b3, split, 1)
    out = out.reshape(batch + (m, n))
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


TINY_MACS = 1 << 12


def _macs(a_shape, b_shape) -> int:
    """Multiply-adds of ``jnp.matmul`` on operands of these (valid) shapes."""
    a_shape = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b_shape = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    batch = math.prod(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    return batch * a_shape[-2] * a_shape[-1] * b_shape[-1]


def matmul_small(a, b) -> jax.Array:
    r"""Ring product ``a @ b`` (mod 2^64) that takes ONE float64 GEMM when the values are small.

    For operands whose signed values satisfy :math:`k \max|a| \max|b| < 2^{53}` (checked at run
    time on the actual values), every partial sum of the float64 GEMM of the signed values is an
    exact integer, and so is the product; otherwise it falls back to :func:`matmul`. The result is
    bit-identical either way. This suits products of *opened* fixed-point values (the simulator's
    ideal functionality and the last party's share in Beaver's fast path), which are small
    compared with the ring; dealer masks are uniform over the ring and need :func:`matmul`.

    Under ``vmap`` the run-time choice becomes a select, so both branches are computed. A tiny
    product (at most ``TINY_MACS`` multiply-adds, e.g. the seed task's 4x2 @ 2x2) is XLA's integer
    loop alone: exact, as fast, and one kernel to compile instead of a bound, a branch and two
    products, which shortens the seed task's compile. Not beyond that: for the MNIST step's
    products with 10 classes (128x128 @ 128x10, 164K multiply-adds), where :func:`matmul` picks
    the loop for uniform ring values, the float GEMM made the step faster.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if ring.is_ring_array(a) and a.dtype == b.dtype and _macs(a.shape, b.shape) <= TINY_MACS:
        return jnp.matmul(a, b, preferred_element_type=a.dtype)
    k = a.shape[-1]
    sa, sb = ring.to_signed(a), ring.to_signed(b)
    bound = (jnp.max(jnp.abs(sa.astype(jnp.float64)), initial=0.0)
             * jnp.max(jnp.abs(sb.astype(jnp.float64)), initial=0.0) * k)

    def small(a, b):
        p = jnp.matmul(sa.astype(jnp.float64), sb.astype(jnp.float64),
                       precision=lax.Precision.HIGHEST)
        return ring.from_signed(p.astype(_I64), a.dtype)

    return lax.cond(bound < 2.0**52, small, lambda a, b: matmul(a, b), a, b)
