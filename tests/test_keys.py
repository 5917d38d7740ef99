"""The security model of jaxmpc's randomness: one party's material does not determine another's.

The attack (found in review of the earlier key derivation): with SplitMix64 splits, the children
of a key were consecutive words of one invertible stream, and every party's dealer material was a
slice of one stream. Party 1 of a 2-party ``jaxmpc.mul`` could invert one word of its own share of
the Beaver mask ``a`` (the SplitMix64 finaliser is a bijection), get the draw's stream seed, climb to
the parent key's split seed, derive the key that shared ``x`` and rebuild party 0's mask: the secret,
from its own view, with nothing opened. The positive control runs the attack against that scheme,
written out here in Python integers, and recovers ``x`` exactly; against jaxmpc it fails.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.protocols.additive import dealer
from jaxmpc.core import keys, ring

M = 1 << 64
GAMMA = 0x9E3779B97F4A7C15
OLD_TAG_SPLIT = 0x6A09E667F3BCC908  # the earlier SplitMix64 split's domain tag
FXP = jaxmpc.FixedPoint(10, 3)
SECRET = [1234.5, -77.125, 3.0]


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M
    return z ^ (z >> 31)


def _unshift(z: int, s: int) -> int:
    """The inverse of z -> z ^ (z >> s) on 64 bits."""
    out = z
    for _ in range(64 // s + 1):
        out = z ^ (out >> s)
    return out


def _unmix(z: int) -> int:
    """The inverse of the SplitMix64 finaliser: it is a bijection."""
    z = _unshift(z, 31)
    z = _unshift((z * pow(0x94D049BB133111EB, -1, M)) % M, 27)
    return _unshift((z * pow(0xBF58476D1CE4E5B9, -1, M)) % M, 30)


def _seed(data) -> int:
    hi, lo = (int(w) for w in np.asarray(data))
    return (hi << 32) | lo


def attack(a1_first_word: int, size: int, x1: list[int]) -> list[int]:
    """Party 1's attack on the SplitMix64 key tree, from its own view of mul(k_mul, x, y) with
    k_x, k_y, k_mul = split(key, 3): its share of a (party 1's row starts at word ``size`` of the
    draw's stream) and its share x1 of x. Returns the ring values it rebuilds for x."""
    s_mul = (_unmix(a1_first_word) - (size + 1) * GAMMA) % M  # the draw's key, child 2 of the split
    split_seed = (_unmix(s_mul) - 3 * GAMMA) % M
    k_x = _mix((split_seed + GAMMA) % M)  # child 0: the key that shared x
    mask = [_mix((k_x + (i + 1) * GAMMA) % M) for i in range(len(x1))]  # party 0's share of x
    return [(m + s) % M for m, s in zip(mask, x1)]


def _old_scheme_view(seed: int, v: list[int]) -> tuple[int, list[int]]:
    """Party 1's view under the earlier scheme, in Python integers: the key of jaxmpc.key(seed)
    split by SplitMix64, x shared with one stream of k_x, the triple drawn from one stream of k_mul."""
    root = _seed(jax.random.key_data(jaxmpc.key(seed)))  # the root key is derived as before
    split_seed = _mix(root ^ OLD_TAG_SPLIT)
    k_x, _, k_mul = (_mix((split_seed + (i + 1) * GAMMA) % M) for i in range(3))
    x1 = [(w - _mix((k_x + (i + 1) * GAMMA) % M)) % M for i, w in enumerate(v)]
    a1_first = _mix((k_mul + (len(v) + 1) * GAMMA) % M)  # a = words 0..2|x|-1, party 1's from |x|
    return a1_first, x1


def _jaxmpc_view(seed: int):
    """Party 1's view of jaxmpc's own mul, and what it is entitled to recover: its own stream key."""
    k_x, k_y, k_mul = jax.random.split(jaxmpc.key(seed), 3)
    x = jaxmpc.share(k_x, SECRET, FXP)
    y = jaxmpc.share(k_y, [2.0, 0.5, -1.0], FXP)
    specs = dealer.beaver_specs(jnp.multiply, x.shape, y.shape, 2)  # what mul draws
    (a, _, _), _ = dealer.with_truncation(jax.random.clone(k_mul), specs, specs[2][1], 2)
    jaxmpc.mul(k_mul, x, y)  # the call whose material this is
    own = jax.random.split(jax.random.clone(k_mul), 3)[1]  # party 1's stream key (ring.draw)
    return int(a[1, 0]), [int(w) for w in np.asarray(x.shares[1])], _seed(jax.random.key_data(own))


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_inversion_attack_rebuilds_x_under_the_old_scheme(seed):
    """Positive control: the attack works on the earlier key tree."""
    v = [int(w) for w in np.asarray(FXP.encode(jnp.asarray(SECRET)))]
    a1_first, x1 = _old_scheme_view(seed, v)
    assert attack(a1_first, len(v), x1) == v


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_inversion_attack_fails_on_jaxmpc(seed):
    """Against jaxmpc, party 1 still inverts its first word (its stream is its own key's), but that
    seed is a Threefry output: climbing the SplitMix64 tree from it gives nothing like x."""
    v = [int(w) for w in np.asarray(FXP.encode(jnp.asarray(SECRET)))]
    a1_first, x1, own_seed = _jaxmpc_view(seed)
    assert (_unmix(a1_first) - GAMMA) % M == own_seed  # the word is word 0 of party 1's own stream
    guess = attack(a1_first, len(v), x1)
    assert all(g != w for g, w in zip(guess, v))


def test_streams_of_one_draw_are_not_related_by_the_splitmix_structure():
    """The n + 1 stream keys of a draw (Threefry children): none is another's SplitMix64 neighbour
    (seed + k gamma, k small), or its finaliser image or preimage, as consecutive SplitMix64 words
    or derived seeds were."""
    children = [_seed(d) for d in np.asarray(jax.random.key_data(jax.random.split(jaxmpc.key(3), 6)))]
    for i, s in enumerate(children):
        related = {(s + k * GAMMA) % M for k in range(-8, 9)} | {_mix(s), _unmix(s)}
        assert not related & (set(children) - {s}), i
    assert len(set(children)) == 6


def test_threefry_matches_jax():
    """keys.threefry is JAX's threefry2x32 block function, bit for bit."""
    from jax.extend.random import threefry2x32_p
    words = [jnp.asarray(np.random.default_rng(i).integers(0, 2**32, 64, dtype=np.uint64), jnp.uint32)
             for i in range(4)]
    ours = jax.jit(keys.threefry)(*words)
    theirs = jax.jit(threefry2x32_p.bind)(*words)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_every_party_draws_from_its_own_key():
    """ring.draw's rows: party i's words are its own key's stream (child i of the draw key) and
    depend on nothing else: changing the spec of another party's array leaves them unchanged."""
    key = jaxmpc.key(5)
    a, = ring.draw(jax.random.clone(key), 3, (3, (4,)))
    a2, _ = ring.draw(jax.random.clone(key), 3, (3, (4,)), (ring.DEALER, (7,)))
    np.testing.assert_array_equal(a, a2)
    child = jax.random.split(key, 4)
    for i in range(3):
        np.testing.assert_array_equal(a[i], ring.random(child[i], (4,)))
