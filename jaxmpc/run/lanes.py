r"""``jax.vmap`` with the run axis innermost: sweeps whose configurations are the vector lanes.

``jax.vmap(run)`` stacks configurations along a *leading* axis, so a vmapped kernel of a jaxmpc run
works on arrays like ``uint64[256, 2, 4, 2]`` (256 configurations, 2 parties, a 4x2 matrix): its
innermost dimension, the one XLA's CPU code vectorises, has 2 elements. :func:`vmap` computes the
same function with the run axis *last* inside the program (``uint64[2, 4, 2, 256]``), so every
elementwise share operation runs across configurations in full vector registers, with the same
results bit for bit. ``experiments/bench.py`` times the 256-run seed-task sweep both ways
(``seed_sweep_256`` and ``seed_sweep_256_lanes``; recorded figures in ``docs/performance.md``).

How: ``fn`` is traced once for one run (``jax.make_jaxpr``) and its equations are evaluated with
every batched value carrying the run axis last. Rules for the primitives that dominate jaxmpc's
programs keep it there without moving data (elementwise operations, with the primitive's size-1
broadcasting; ``broadcast_in_dim``, ``reshape``, ``squeeze``, ``slice``, ``concatenate``,
``stack``, ``transpose``, reductions, ``jit`` and ``custom_jvp_call`` inlined, ``scan`` with
batched carries, small integer ``dot_general`` as a multiply and a sum, and the draws and splits of
:data:`jaxmpc.core.keys.SPLITMIX64` keys generated directly in this layout). Every other primitive, or a
rule's case it does not cover, falls back to JAX's own batching rule
(``jax.vmap(primitive, in_axes=-1, out_axes=-1)``): the same values, with a transpose around it.
Every rule is exact (integer arithmetic, or a fallback), and each equation's result is checked
against the shape the trace expects, so a rule error raises :class:`jaxmpc.errors.BatchingRuleError`
at trace time instead of computing something else. ``tests/test_lanes.py`` compares the outputs with
``jax.vmap`` bit for bit: shares, and the seed task's revealed losses. One caveat for floating-point
outputs: XLA may turn a division by a broadcast value (decoding divides by the scale) into a product
with its reciprocal in one program and not in another, a last-bit difference; it showed once, in a
revealed product with the runs also split over 4 devices (``tests/test_mesh.py`` compares the shares
there). With ``jax_debug_key_reuse`` on, one run's program goes through JAX's key-reuse check first
(the batched program draws from raw key data, which the checker cannot follow).

Example:
    >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
    >>> import jaxmpc
    >>> from jaxmpc import lanes
    >>> from jaxmpc.tasks import tutorial
    >>> keys = jax.random.split(jaxmpc.key(0), 4)
    >>> losses = jaxmpc.config.jit(lanes.vmap(tutorial.run))(keys, jnp.array([2, 3, 4, 5]))
    >>> losses.shape
    (4, 20)
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from ..core import keys as _keys
from ..core import ring
from ..errors import BatchingRuleError, InputTypeError

# primitives computed element by element (operands of equal rank; size-1 dimensions broadcast)
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "rem", "neg", "not", "and", "or", "xor", "shift_left",
    "shift_right_logical", "shift_right_arithmetic", "select_n", "eq", "ne", "gt", "ge", "lt", "le",
    "max", "min", "clz", "population_count", "abs", "sign", "floor", "ceil", "round", "is_finite",
    "exp", "log", "sqrt", "rsqrt", "pow", "integer_pow", "convert_element_type", "bitcast_convert_type",
})
REDUCTIONS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and",
                        "reduce_or", "reduce_xor"})
SMALL_DOT = 1 << 16  # an integer dot_general whose per-run product has at most this many terms


class _Val:
    """A value of the program: ``a`` is the array, with the run axis last if ``batched``."""
    __slots__ = ("a", "batched")

    def __init__(self, a, batched: bool):
        self.a, self.batched = a, batched

    @property
    def shape(self) -> tuple:
        """The per-run shape."""
        return tuple(self.a.shape[:-1]) if self.batched else tuple(np.shape(self.a))


def vmap(fn: Callable, in_axes=0) -> Callable:
    """``jax.vmap(fn, in_axes)`` (run axis first in the inputs and outputs), computed with the run
    axis last inside the program (see the module notes).

    Args:
        fn: one run, a pure function of arrays (and pytrees of arrays).
        in_axes: ``0`` (every argument has a leading run axis) or one of ``0`` / ``None`` per
            positional argument (``None``: shared by every run).
    Returns:
        A function of the batched arguments; its outputs are ``jax.vmap(fn, in_axes)``'s, with the
        run axis first (bit for bit for integer outputs; see the module notes for floats).
    """
    if not callable(fn):
        raise InputTypeError(f"lanes.vmap: fn must be callable, got {type(fn).__name__}.")

    def batched(*args):
        axes = (0,) * len(args) if in_axes == 0 else (
            tuple(in_axes) if isinstance(in_axes, (tuple, list)) else ())
        if len(axes) != len(args) or any(a not in (0, None) for a in axes):
            raise InputTypeError(f"lanes.vmap: in_axes must be 0 or one of 0 / None per positional "
                                 f"argument ({len(args)} here), got {in_axes!r}.")
        leaves, flags = [], []
        for arg, ax in zip(args, axes):
            arg_leaves = [x if hasattr(x, "dtype") else jnp.asarray(x)  # Python scalars
                          for x in jax.tree_util.tree_leaves(arg)]
            leaves += arg_leaves
            flags += [ax == 0] * len(arg_leaves)
        sizes = {np.shape(x)[0] for x, f in zip(leaves, flags) if f and np.ndim(x) > 0}
        if len(sizes) != 1 or any(f and np.ndim(x) == 0 for x, f in zip(leaves, flags)):
            raise InputTypeError(f"lanes.vmap: every batched argument needs the same leading run "
                                 f"axis, got leading sizes {sorted(sizes)}.")
        (n,) = sizes
        one = [jax.ShapeDtypeStruct(np.shape(x)[1:] if f else np.shape(x), x.dtype)
               for x, f in zip(leaves, flags)]
        tree = jax.tree_util.tree_structure(args)
        closed, out_shape = jax.make_jaxpr(
            lambda *ls: fn(*jax.tree_util.tree_unflatten(tree, ls)), return_shape=True)(*one)
        _check_key_reuse(closed.jaxpr)
        ins = [_Val(_move(x, 0, -1), True) if f else _Val(x, False) for x, f in zip(leaves, flags)]
        outs = _eval(closed.jaxpr, closed.consts, ins, n)
        flat = [_move(_batched(o, n), -1, 0) for o in outs]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), flat)

    return batched


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _move(x, source: int, destination: int):
    """``jnp.moveaxis``; a key array moves through its key data (JAX's key-reuse checker counts a
    transposed key array as consumed, and then refuses the slices that follow)."""
    if not _is_key(x):
        return jnp.moveaxis(x, source, destination)
    data = jax.random.key_data(x)  # [*shape, key words]: the key axes are all but the last
    data = jnp.moveaxis(data, source % x.ndim, destination % x.ndim)
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))


def _check_key_reuse(jaxpr) -> None:
    """JAX's key-reuse check of one run's program, when ``jax_debug_key_reuse`` is on: the rules
    below draw from raw key data, which the checker cannot follow in the batched program."""
    if not jax.config.jax_debug_key_reuse:
        return
    try:
        from jax.experimental.key_reuse._core import check_key_reuse_jaxpr
    except ImportError:  # another JAX: its checker still sees the keys passed in
        return
    check_key_reuse_jaxpr(jaxpr)


def _batched(v: _Val, n: int, shape: tuple | None = None):
    """``v`` as a batched array of per-run ``shape`` (default its own): unbatched values and batched
    scalars are broadcast."""
    shape = v.shape if shape is None else tuple(shape)
    if v.batched:
        if v.shape == shape:
            return v.a
        return lax.broadcast_in_dim(v.a, shape + (n,), (len(shape),))  # a batched scalar
    a = jnp.asarray(v.a)
    return lax.broadcast_in_dim(a, shape + (n,), tuple(range(a.ndim)) if a.ndim else ())


def _eval(jaxpr, consts, args, n: int) -> list:
    env = {}

    def read(x):
        return _Val(x.val, False) if isinstance(x, jcore.Literal) else env[x]

    for var, c in zip(jaxpr.constvars, consts):
        env[var] = _Val(c, False)
    for var, a in zip(jaxpr.invars, args):
        env[var] = a
    for eqn in jaxpr.eqns:
        outs = _apply(eqn.primitive, [read(x) for x in eqn.invars], dict(eqn.params), n)
        outs = outs if eqn.primitive.multiple_results else [outs]
        for var, o in zip(eqn.outvars, outs):
            if o.shape != tuple(var.aval.shape):  # a rule's bug: fail while tracing
                raise BatchingRuleError(
                    f"jaxmpc.lanes.vmap: the rule for the primitive {eqn.primitive.name!r} gave a result of "
                    f"per-run shape {o.shape}, expected {tuple(var.aval.shape)} (the shape in the traced "
                    "program of one run). This is a bug in that rule (jaxmpc.lanes.RULES); compute this "
                    "function with jax.vmap meanwhile (the same results, with the run axis first inside "
                    "the program), and report the primitive.")
            env[var] = o
    return [read(x) for x in jaxpr.outvars]


def _apply(prim, vals: list, params: dict, n: int):
    name = prim.name
    if name in ("jit", "pjit"):
        return _eval(params["jaxpr"].jaxpr, params["jaxpr"].consts, vals, n)
    if name == "custom_jvp_call":  # evaluated, never differentiated here: the primal computation
        return _eval(params["call_jaxpr"].jaxpr, params["call_jaxpr"].consts, vals, n)
    if not any(v.batched for v in vals):
        out = prim.bind(*[v.a for v in vals], **params)
        return [_Val(o, False) for o in out] if prim.multiple_results else _Val(out, False)
    rule = RULES.get(name)
    out = rule(prim, vals, params, n) if rule is not None else None
    return _fallback(prim, vals, params, n) if out is None else out


def _fallback(prim, vals, params, n):
    """JAX's own batching rule for ``prim``, run axis last in and out."""
    args = [_move(v.a, -1, 0) if v.batched else v.a for v in vals]
    out = jax.vmap(lambda *xs: prim.bind(*xs, **params), in_axes=[0 if v.batched else None for v in vals],
                   axis_size=n)(*args)
    if prim.multiple_results:
        return [_Val(_move(o, 0, -1), True) for o in out]
    return _Val(_move(out, 0, -1), True)


def _elementwise(prim, vals, params, n):
    if prim.name == "bitcast_convert_type" and (
            jnp.dtype(params["new_dtype"]).itemsize != jnp.asarray(vals[0].a).dtype.itemsize):
        return None  # a width change adds or drops a trailing axis: JAX's rule
    shapes = [v.shape for v in vals]
    out_shape = tuple(np.broadcast_shapes(*shapes))
    own = [s if len(s) == len(out_shape) else out_shape for s in shapes]  # size-1 dims: the primitive
    args = [_batched(v, n, s) for v, s in zip(vals, own)]
    if prim.name == "select_n" and shapes[0] == () and not vals[0].batched:
        args[0] = vals[0].a  # a scalar predicate shared by every run stays a scalar
    return _Val(prim.bind(*args, **params), True)


def _broadcast_in_dim(prim, vals, params, n):
    if len(vals) != 1:
        return None
    shape = tuple(params["shape"])
    return _Val(lax.broadcast_in_dim(vals[0].a, shape + (n,),
                                     tuple(params["broadcast_dimensions"]) + (len(shape),)), True)


def _reshape(prim, vals, params, n):
    if len(vals) != 1 or params.get("dimensions") is not None:
        return None
    return _Val(vals[0].a.reshape(tuple(params["new_sizes"]) + (n,)), True)  # row-major: run axis kept


def _squeeze(prim, vals, params, n):
    return _Val(lax.squeeze(vals[0].a, tuple(params["dimensions"])), True)


def _slice(prim, vals, params, n):
    strides = params["strides"]
    return _Val(lax.slice(vals[0].a, tuple(params["start_indices"]) + (0,),
                          tuple(params["limit_indices"]) + (n,),
                          None if strides is None else tuple(strides) + (1,)), True)


def _concatenate(prim, vals, params, n):
    return _Val(lax.concatenate([_batched(v, n) for v in vals], params["dimension"]), True)


def _stack(prim, vals, params, n):
    return _Val(jnp.stack([_batched(v, n) for v in vals], axis=params["axis"]), True)


def _transpose(prim, vals, params, n):
    perm = tuple(params["permutation"])
    return _Val(lax.transpose(vals[0].a, perm + (len(perm),)), True)


def _reduce(prim, vals, params, n):
    return _Val(prim.bind(vals[0].a, **params), True)  # reduced axes are per-run axes: unchanged


def _dot_general(prim, vals, params, n):
    """A small integer ``dot_general`` as a product and a sum over the contracted axes (exact)."""
    if not all(jnp.issubdtype(jnp.asarray(v.a).dtype, jnp.integer) for v in vals):
        return None  # float sums would be reassociated: JAX's rule instead
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    x, y = (_batched(v, n) for v in vals)
    nx, ny = x.ndim - 1, y.ndim - 1
    lf = tuple(d for d in range(nx) if d not in lc and d not in lb)
    rf = tuple(d for d in range(ny) if d not in rc and d not in rb)
    xt = lax.transpose(x, tuple(lb) + lf + tuple(lc) + (nx,))
    yt = lax.transpose(y, tuple(rb) + rf + tuple(rc) + (ny,))
    nb = len(lb)
    b_shape, c_shape = xt.shape[:nb], xt.shape[nb + len(lf):-1]
    lf_shape, rf_shape = xt.shape[nb:nb + len(lf)], yt.shape[nb:nb + len(rf)]
    if int(np.prod(b_shape + lf_shape + rf_shape + c_shape, dtype=np.int64)) > SMALL_DOT:
        return None
    xt = xt.reshape(b_shape + lf_shape + (1,) * len(rf) + c_shape + (n,))
    yt = yt.reshape(b_shape + (1,) * len(lf) + rf_shape + c_shape + (n,))
    dtype = params.get("preferred_element_type") or x.dtype
    first = nb + len(lf) + len(rf)
    prod = lax.mul(xt.astype(dtype), yt.astype(dtype))
    return _Val(jnp.sum(prod, axis=tuple(range(first, first + len(c_shape))), dtype=dtype), True)


def _smx_data(v: _Val):
    """``uint32[2, *shape, n]`` key data of batched SplitMix64 keys (the run axis last), or None
    for other keys or unbatched ones."""
    if not (v.batched and _is_key(v.a) and jax.random.key_impl(v.a) == _keys.SPLITMIX64):
        return None
    return jnp.moveaxis(jax.random.key_data(v.a), -1, 0)  # key data: [*shape, n, 2]


def _random_bits(prim, vals, params, n):
    data = _smx_data(vals[0])
    if data is None:
        return None
    shape, width = tuple(params["shape"]), params["bit_width"]
    seeds = _keys._to_seed(data)
    # keys._stream of every seed ([*shape, n]), the run axis kept last: [*shape, count, n]
    words = _keys._mix(seeds[..., None, :] + _keys._offsets(math.prod(shape))[:, None])
    words = words.reshape(seeds.shape[:-1] + shape + (n,))
    return _Val(words if width == 64 else words.astype(jnp.dtype(f"uint{width}")), True)


def _random_split(prim, vals, params, n):
    data = _smx_data(vals[0])
    if data is None:
        return None
    shape = tuple(params["shape"])
    counters = jnp.arange(math.prod(shape), dtype=jnp.uint32)[:, None]
    # keys._split_impl's children, the run axis kept last: [*shape, count, n, 2], stored once
    child = _keys.derive(jnp.moveaxis(data, 0, -1)[..., None, :, :], counters, _keys._TAG_SPLIT)
    child = ring.materialize(child).reshape(data.shape[1:-1] + shape + (n, 2))
    return _Val(jax.random.wrap_key_data(child, impl=_keys.SPLITMIX64), True)


def _scan(prim, vals, params, n):
    """``scan`` with every carry batched (an unbatched initial carry is broadcast), the run axis
    last in the carries, the scanned inputs and the stacked outputs."""
    body, n_consts, n_carry = params["jaxpr"], params["num_consts"], params["num_carry"]
    consts, carry, xs = vals[:n_consts], vals[n_consts:n_consts + n_carry], vals[n_consts + n_carry:]
    xs_batched, ys_batched = [x.batched for x in xs], []

    def step(c, x):
        ins = list(consts) + [_Val(a, True) for a in c] + [_Val(a, b) for a, b in zip(x, xs_batched)]
        outs = _eval(body.jaxpr, body.consts, ins, n)
        ys_batched[:] = [o.batched for o in outs[n_carry:]]
        return [_batched(o, n) for o in outs[:n_carry]], [jnp.asarray(o.a) for o in outs[n_carry:]]

    c_out, ys = lax.scan(step, [_batched(c, n) for c in carry], [x.a for x in xs],
                         length=params["length"], reverse=params["reverse"], unroll=params["unroll"])
    return [_Val(a, True) for a in c_out] + [_Val(y, b) for y, b in zip(ys, ys_batched)]


# primitive name -> rule(prim, vals, params, n): the batched result, or None to use JAX's own rule
RULES = {**{p: _elementwise for p in ELEMENTWISE}, **{p: _reduce for p in REDUCTIONS},
          "broadcast_in_dim": _broadcast_in_dim, "reshape": _reshape, "squeeze": _squeeze,
          "slice": _slice, "concatenate": _concatenate, "stack": _stack, "transpose": _transpose,
          "dot_general": _dot_general, "random_bits": _random_bits, "random_split": _random_split,
          "scan": _scan}
