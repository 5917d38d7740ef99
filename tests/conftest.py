"""Test configuration: 64-bit types, strict dtype and rank promotion, and JAX's key-reuse checker.

The key-reuse checker makes any reuse of a PRNG key (a reused mask or triple: a security bug) fail.
"""
import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_debug_key_reuse", True)
