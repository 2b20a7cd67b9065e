#!/usr/bin/env bash
# Run the benchmark suite at 1 and 2 threads, with numpy/scipy's OpenBLAS as installed (it takes
# this Zen 5 CPU for a Haswell) and forced to its SkylakeX (AVX-512) kernels, save one JSON per
# setting under bench/results/, and print the report.
#   bench/run_all.sh                              # every bench/test_bench_*.py
#   bench/run_all.sh bench/test_bench_gemm.py -k float32   # chosen files / pytest args
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# Run the whole bench/ folder unless a file or folder is named on the command line.
targets=(bench)
for arg in "$@"; do [[ $arg != -* && -e $arg ]] && targets=() && break; done
files=()
for threads in 1 2; do
  for blas in installed SkylakeX; do
    name="$out/bench-${threads}t-${blas}.json"
    if [[ $blas == installed ]]; then
      # The environment as it is (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the machine sets them).
      OMP_NUM_THREADS=$threads \
        python -m pytest "${targets[@]}" -q -p no:cacheprovider --benchmark-json="$name" "$@"
    else
      env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=$threads \
        python -m pytest "${targets[@]}" -q -p no:cacheprovider --benchmark-json="$name" "$@"
    fi
    files+=("$name=${threads} thread(s), OpenBLAS ${blas}")
  done
done
python bench/report.py "${files[@]}" --peer numpy | tee "$out/report.md"
