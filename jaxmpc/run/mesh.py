r"""Placing simulations on devices: sweeps over a ``"runs"`` mesh axis, parties over a ``"party"`` axis.

jaxmpc scales on JAX's own distributed runtime (``jax.sharding``, ``jax.distributed`` for several
hosts); this module only chooses the placements.

Sweep axis. A sweep is ``jax.vmap`` of one run over a leading run axis. :func:`shard_sweep` jit-compiles
it with the run axis of every input and output split over a 1-D mesh of all devices
(``NamedSharding(mesh, PartitionSpec("runs"))``). The runs are independent, so XLA's SPMD partitioner
gives every device its own slice of runs and no collective at all; each run computes exactly what it
computes on one device, so the results are bit-identical. The run count is padded to a multiple of
the device count (fresh keys from ``pad_key`` for the padding runs, never a reused key) and the
padding is sliced off. With ``jax.distributed.initialize()`` the mesh spans every process's devices
(a global mesh): inputs, identical on every process, are placed with ``jax.device_put`` on the
global sharding, and the results are gathered to every process
(``jax.experimental.multihost_utils.process_allgather``).

Party axis. :func:`party_jit` compiles a protocol with each party's shares on its own device:
``uint64[n, *shape]`` share arrays are constrained to ``NamedSharding(mesh, PartitionSpec("party"))``
at the function's boundary (inputs and outputs), and XLA's SPMD partitioner (GSPMD) places the rest.
An opening, a sum over the party axis, then combines data held by different devices, so it compiles
to a real collective (all-reduce, all-gather, collective-permute or all-to-all); :func:`collectives`
counts them in the compiled program. The partitioner is meant to preserve the program's semantics,
and every share operation is integer arithmetic, so the results should be bit-identical to the
one-device simulation whatever collectives it picks; ``tests/test_mesh.py`` checks this bit for bit
for sharing, Beaver products, matmul, ReLU, truncation and reveal at 2, 3 and 4 parties (it found
one partitioner bug -- strided slices of a party-derived axis, silently wrong at 3 parties -- which
jaxmpc avoids; other protocols are untested under placement). What placement does not give is a
one-to-one map of the protocol's messages: the simulator's own shortcuts (the dealer computing a
triple's product from every party's mask, the ``"protocol"`` mode deriving the last party's share
from the opened product, a public constant added to party 0's share by a concatenation) are
cross-party data flow too, so they also compile to collectives, and the partitioner may route an
opening through one device and broadcast it back. :func:`jaxmpc.cost` stays the protocol's
communication count; a purely local operation (``x + y``) compiles to no collective at all.

Why GSPMD and not ``shard_map``: under ``shard_map`` each device would see a party axis of length one,
but jaxmpc's protocols index parties (party 0 adds public constants, the last share is derived, the
dealer draws ``n`` shares), so every protocol would need a per-party rewrite; sharding constraints at
the boundary run the same code unchanged, and the partitioner does the placement.

Example:
    >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
    >>> import jaxmpc
    >>> from jaxmpc import mesh
    >>> def run(key, precision):  # one run: a shared square at this precision (e.g. seed.run)
    ...     k_x, k_mul = jax.random.split(key)
    ...     x = jaxmpc.share(k_x, [1.5, -2.25], jaxmpc.FixedPoint(10, precision))
    ...     return jaxmpc.reveal(jaxmpc.mul(k_mul, x, x))
    >>> sweep = mesh.shard_sweep(run)  # the runs split over every visible device
    >>> keys = jax.random.split(jaxmpc.key(0), 3)
    >>> out = sweep(keys, jnp.array([2, 3, 4]), pad_key=jaxmpc.key(1))  # padded, padding dropped
    >>> out.shape, bool((abs(out - [2.25, 5.0625]) < 0.02).all())  # numpy results
    ((3, 2), True)
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import config
from . import lanes as _lanes
from ..errors import DeviceMeshError
from ..protocols.shared import Shared

RUNS = "runs"
PARTY = "party"
COLLECTIVES = ("all-reduce", "all-gather", "collective-permute", "all-to-all", "reduce-scatter")


# ---- sweeps over the "runs" axis ----------------------------------------------------------------
def sweep_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"runs"`` over ``devices`` (default ``jax.devices()``: every device of
    every process, a global mesh after ``jax.distributed.initialize()``).

    Example:
        >>> sweep_mesh().axis_names
        ('runs',)
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise DeviceMeshError("sweep_mesh needs at least one device, got an empty list.")
    return Mesh(np.array(devices, dtype=object), (RUNS,))


def padded_runs(n_runs: int, n_devices: int) -> int:
    """The smallest multiple of ``n_devices`` that is at least ``n_runs`` (and at least one per device).

    Example:
        >>> padded_runs(10, 4), padded_runs(8, 4), padded_runs(1, 4)
        (12, 8, 4)
    """
    return max(1, math.ceil(n_runs / n_devices)) * n_devices


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _check_in_axes(in_axes, n_args: int) -> tuple:
    axes = (in_axes,) * n_args if not isinstance(in_axes, (tuple, list)) else tuple(in_axes)
    if len(axes) != n_args or any(a not in (0, None) for a in axes):
        raise DeviceMeshError(
            f"shard_sweep: in_axes must be 0, None, or one of them per positional argument (runs "
            f"along the leading axis), got {in_axes!r} for {n_args} arguments.")
    return axes


class ShardedSweep:
    """``jax.vmap(fn)`` compiled with its run axis split over a mesh; see :func:`shard_sweep`.

    Attributes:
        mesh: the 1-D ``"runs"`` mesh.
        n_devices: the number of devices the runs are split over.
    """

    def __init__(self, fn: Callable, mesh: Mesh, in_axes, lanes: bool = False):
        if tuple(mesh.axis_names) != (RUNS,):
            raise DeviceMeshError(f"shard_sweep needs a 1-D mesh with axis {RUNS!r} (see sweep_mesh), "
                                  f"got axes {mesh.axis_names}.")
        self.fn, self.mesh, self.in_axes, self.lanes = fn, mesh, in_axes, bool(lanes)
        self.n_devices = mesh.size
        self._runs = NamedSharding(mesh, PartitionSpec(RUNS))
        self._replicated = NamedSharding(mesh, PartitionSpec())
        self._compiled_for: dict = {}

    def shardings(self, axes) -> tuple:
        """The input shardings for per-argument ``axes`` (0: split over runs; None: replicated)."""
        return tuple(self._runs if a == 0 else self._replicated for a in axes)

    def jitted(self, key_impls: tuple, axes: tuple):
        """The jitted, vmapped function; typed keys travel as raw key data (``key_impls`` per leaf).

        Raw key data crosses the boundary because ``jax.device_put`` onto a sharding that spans
        several processes compares the host values across processes (typed keys have no host
        value), and because JAX's eager key-reuse checker marks a whole key array consumed when a
        slice of it is passed to a compiled function.
        """
        sig = (key_impls, axes)
        if sig not in self._compiled_for:
            def run_all(*args):
                leaves, treedef = jax.tree_util.tree_flatten(args)
                leaves = [leaf if impl is None else jax.random.wrap_key_data(leaf, impl=impl)
                          for leaf, impl in zip(leaves, key_impls)]
                vmap = _lanes.vmap if self.lanes else jax.vmap
                return vmap(self.fn, axes)(*jax.tree_util.tree_unflatten(treedef, leaves))
            self._compiled_for[sig] = config.jit(run_all, in_shardings=self.shardings(axes),
                                                 out_shardings=self._runs)
        return self._compiled_for[sig]

    def prepare(self, *args, pad_key=None):
        """Pad and place the inputs: returns ``(jitted function, placed args, number of runs)``.

        Batched leaves (``in_axes`` 0) are padded to a multiple of the device count: typed PRNG
        keys with fresh keys split from ``pad_key``, other arrays with copies of the last run.
        """
        axes = _check_in_axes(self.in_axes, len(args))
        n_runs = None
        for a, ax in zip(args, axes):
            for leaf in jax.tree_util.tree_leaves(a) if ax == 0 else ():
                n = np.shape(leaf)[0] if np.ndim(leaf) else None
                if n is None or (n_runs is not None and n != n_runs):
                    raise DeviceMeshError(
                        f"shard_sweep: every batched input needs the same leading run axis; got "
                        f"shape {np.shape(leaf)} after {n_runs} runs. Pass in_axes=None for inputs "
                        "shared by all runs.")
                n_runs = n
        if n_runs is None:
            raise DeviceMeshError("shard_sweep: no input has a run axis (in_axes are all None).")
        n_pad = padded_runs(n_runs, self.n_devices) - n_runs
        n_keys = sum(_is_key(leaf) for a, ax in zip(args, axes) if ax == 0
                     for leaf in jax.tree_util.tree_leaves(a))
        if n_pad and n_keys and pad_key is None:
            raise DeviceMeshError(
                f"shard_sweep: {n_runs} runs on {self.n_devices} devices need {n_pad} padding runs, "
                "and their keys must be fresh (a reused key is a reused mask or triple). Pass "
                "pad_key=<an unused key>, or a run count that is a multiple of the device count.")
        pad_keys = iter(jax.random.split(pad_key, n_keys) if n_pad and n_keys else ())

        def pad(leaf):
            if not n_pad:
                return leaf
            if _is_key(leaf):
                return jnp.concatenate([leaf, jax.random.split(next(pad_keys), n_pad)])
            leaf = jnp.asarray(leaf)
            return jnp.concatenate([leaf, jnp.repeat(leaf[-1:], n_pad, axis=0)])

        args = tuple(jax.tree_util.tree_map(pad, a) if ax == 0 else a for a, ax in zip(args, axes))
        leaves, treedef = jax.tree_util.tree_flatten(args)
        key_impls = tuple(jax.random.key_impl(leaf) if _is_key(leaf) else None for leaf in leaves)
        leaves = [jax.random.key_data(leaf) if _is_key(leaf) else leaf for leaf in leaves]
        args = jax.tree_util.tree_unflatten(treedef, leaves)
        placed = tuple(jax.device_put(a, s) for a, s in zip(args, self.shardings(axes)))
        return self.jitted(key_impls, axes), placed, n_runs

    def __call__(self, *args, pad_key=None):
        """Run every run; returns the outputs as numpy arrays (on every process), run axis first."""
        fn, placed, n_runs = self.prepare(*args, pad_key=pad_key)
        return jax.tree_util.tree_map(lambda a: a[:n_runs], gather(fn(*placed)))


def shard_sweep(fn: Callable, mesh: Mesh | None = None, *, in_axes=0, lanes: bool = False) -> ShardedSweep:
    r"""``jax.vmap(fn, in_axes)``, jit-compiled (with :func:`jaxmpc.config.compiler_options`) with
    the run axis split over the devices of ``mesh``.

    Args:
        fn: one run, a pure function of its arguments (e.g. ``jaxmpc.tasks.tutorial.run``).
        mesh: a 1-D ``"runs"`` mesh (default :func:`sweep_mesh`: every visible device).
        in_axes: ``0`` (every argument has a leading run axis) or one of ``0`` / ``None`` per
            positional argument (``None``: shared by every run, replicated).
        lanes: vmap with :func:`jaxmpc.lanes.vmap` (the run axis innermost inside the program:
            faster on CPUs, the same results) instead of ``jax.vmap``.
    Returns:
        A :class:`ShardedSweep`; call it as ``sweep(*args, pad_key=key)``. ``pad_key`` (a fresh key)
        is needed only when typed keys must be padded (run count not a multiple of the device count).
        The outputs come back as numpy arrays with the run axis first, bit-identical to
        ``jax.jit(jax.vmap(fn, in_axes))(*args)`` on one device.

    Example:
        >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
        >>> sweep = shard_sweep(lambda x, c: x * c, in_axes=(0, None))
        >>> sweep(jnp.arange(5.0), 2.0).tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    return ShardedSweep(fn, sweep_mesh() if mesh is None else mesh, in_axes, lanes)


def gather(tree: Any) -> Any:
    """Every leaf as a numpy array holding the whole global array, on every process.

    One process: ``np.asarray``. Several processes (``jax.distributed``): an all-gather across
    processes (``multihost_utils.process_allgather``), since no process can address the others' shards.
    """
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, tree)
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(tree, tiled=True)


# ---- parties over the "party" axis ---------------------------------------------------------------
def party_mesh(n_parties: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"party"``: party ``i`` on the ``i``-th of ``devices`` (default
    ``jax.devices()``). Extra devices stay idle (3 parties on 4 devices use the first 3); fewer
    devices than parties raise :class:`jaxmpc.DeviceMeshError` (each party gets a device of its own).

    Example:
        >>> import jaxmpc
        >>> try:
        ...     party_mesh(len(jax.devices()) + 1)
        ... except jaxmpc.DeviceMeshError as e:
        ...     print(type(e).__name__, "(one device per party)")
        DeviceMeshError (one device per party)
    """
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) or n_parties < 2:
        raise DeviceMeshError(f"party_mesh: n_parties must be an int >= 2, got {n_parties!r}.")
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < n_parties:
        raise DeviceMeshError(
            f"party_mesh: {n_parties} parties need {n_parties} devices (one each), but only "
            f"{len(devices)} are given. Use fewer parties, more devices, or on CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n_parties} before importing jax.")
    return Mesh(np.array(devices[:n_parties], dtype=object), (PARTY,))


def party_sharding(mesh: Mesh) -> NamedSharding:
    """``NamedSharding(mesh, PartitionSpec("party"))``: the leading (party) axis split one per device."""
    if tuple(mesh.axis_names) != (PARTY,):
        raise DeviceMeshError(f"expected a 1-D mesh with axis {PARTY!r} (see party_mesh), got axes "
                              f"{mesh.axis_names}.")
    return NamedSharding(mesh, PartitionSpec(PARTY))


def _check_parties(s: Shared, mesh: Mesh) -> None:
    if s.n_parties != mesh.size:
        raise DeviceMeshError(
            f"a Shared value with {s.n_parties} parties cannot be placed on a {mesh.size}-device "
            f"party mesh (one party per device); make the mesh with party_mesh({s.n_parties}).")


def _map_shared(f: Callable, tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda s: f(s) if isinstance(s, Shared) else s, tree,
                                  is_leaf=lambda s: isinstance(s, Shared))


def place_parties(tree: Any, mesh: Mesh) -> Any:
    """Put party ``i``'s share of every :class:`Shared` in ``tree`` on the ``i``-th device of ``mesh``.

    Other leaves are left as they are (``jax.jit`` replicates them as needed).
    """
    sharding = party_sharding(mesh)

    def place(s: Shared) -> Shared:
        _check_parties(s, mesh)
        return s.like(jax.device_put(s.shares, sharding))
    return _map_shared(place, tree)


def constrain_parties(tree: Any, mesh: Mesh) -> Any:
    """Inside ``jit``: constrain every :class:`Shared` in ``tree`` to one party per device
    (``jax.lax.with_sharding_constraint``). Use it at protocol boundaries."""
    sharding = party_sharding(mesh)

    def constrain(s: Shared) -> Shared:
        _check_parties(s, mesh)
        return s.like(jax.lax.with_sharding_constraint(s.shares, sharding))
    return _map_shared(constrain, tree)


def party_jit(fn: Callable, mesh: Mesh, **jit_kwargs) -> Callable:
    r"""``jax.jit(fn)`` with each party's shares on its own device of ``mesh`` (see the module notes).

    Every :class:`Shared` among the arguments and results is constrained to
    ``PartitionSpec("party")``; XLA's partitioner places everything in between, so each opening
    (and each cross-party step of the simulator) compiles to a collective. The results are
    bit-identical to ``jax.jit(fn)`` on one device; shared results stay placed (party ``i``'s share
    on device ``i``), public results are replicated.

    Args:
        fn: a jaxmpc function of keys, :class:`Shared` values and public arrays.
        mesh: a :func:`party_mesh` whose size is the functions' party count.
        jit_kwargs: passed to ``jax.jit`` (e.g. ``static_argnames``).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> if len(jax.devices()) >= 2:  # e.g. XLA_FLAGS=--xla_force_host_platform_device_count=2
        ...     k0, k1, k2 = jax.random.split(jaxmpc.key(0), 3)
        ...     fxp = jaxmpc.FixedPoint(10, 3)
        ...     m = party_mesh(2)
        ...     x, y = place_parties((jaxmpc.share(k0, [1.5], fxp), jaxmpc.share(k1, [2.0], fxp)), m)
        ...     z = party_jit(jaxmpc.mul, m)(k2, x, y)  # party i's share of z on device i
        ...     assert abs(jaxmpc.reveal(z)[0] - 3.0) <= 2e-3  # within 2 units of 1e-3
    """
    def placed(*args, **kwargs):
        args, kwargs = constrain_parties((args, kwargs), mesh)
        return constrain_parties(fn(*args, **kwargs), mesh)
    placed.__name__ = getattr(fn, "__name__", "placed")
    return jax.jit(placed, **jit_kwargs)


_COLLECTIVE_RE = re.compile(r"\b(" + "|".join(COLLECTIVES) + r")(?:-start)?\(")


def collectives(compiled_text: str) -> dict[str, int]:
    """How many of each cross-device collective a compiled program holds.

    Args:
        compiled_text: ``jax.jit(f).lower(*args).compile().as_text()`` (the partitioned HLO).
    Returns:
        ``{name: count}`` for ``all-reduce``, ``all-gather``, ``collective-permute``, ``all-to-all``,
        ``reduce-scatter`` (async ``-start`` forms counted once; XLA may merge several openings into
        one tuple all-reduce, so counts are not openings).

    Example:
        >>> collectives("%a = u64[3] all-reduce(u64[3] %x), replica_groups={{0,1}}")["all-reduce"]
        1
    """
    counts = dict.fromkeys(COLLECTIVES, 0)
    for m in _COLLECTIVE_RE.finditer(compiled_text):
        counts[m.group(1)] += 1
    return counts
