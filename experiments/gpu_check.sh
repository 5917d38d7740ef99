#!/usr/bin/env bash
# One call on a lent GPU machine (see the README's "Performance"): the device, every exact ring-matmul
# method, experiments/bench.py, then the whole test suite on the GPU. Each step has its own time
# limit (seconds, from the environment), so the call ends inside a short lease; logs and JSON go
# to $OUT (default /tmp/gpu_check). Uses the machine's own python3, JAX and optax.
#
#     OUT=/tmp/gpu GEMM_S=90 BENCH_S=200 TEST_S=180 bash experiments/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  nproc
  $PY -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())"
} 2>&1 | tee "$OUT/device.txt"
timeout -s INT "${GEMM_S:-90}" $PY experiments/bench_gemm.py --json "$OUT/gemm.json" >"$OUT/gemm.log" 2>&1
echo "bench_gemm exit $?" >>"$OUT/gemm.log"
timeout -s INT "${BENCH_S:-200}" $PY experiments/bench.py --json "$OUT/bench.json" >"$OUT/bench.log" 2>&1
echo "bench exit $?" >>"$OUT/bench.log"
timeout -s INT "${TEST_S:-180}" $PY -m pytest -q -n "${WORKERS:-8}" -p no:cacheprovider --durations=10 \
    >"$OUT/tests.log" 2>&1
echo "pytest exit $?" >>"$OUT/tests.log"
tail -n 25 "$OUT/gemm.log"; tail -n 22 "$OUT/bench.log"
grep -E "^(FAILED|ERROR)| passed| failed|exit" "$OUT/tests.log" | tail -n 40
