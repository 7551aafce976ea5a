#!/usr/bin/env bash
# Runs what the GPU kit holds (made by tools/gpu_kit/make_kit.sh): every GPU
# test (JUnit XML), then `kvbench gpu`, then the reference engine's test and
# TTFT benchmark with this machine's own Python and torch (on its GPU when
# torch sees one; the client through its C ABI), and prints a one-screen
# summary. Results go under $OUT (default: KIT/out) as a few files:
#   summary.txt, junit.tar.gz, logs.tar.gz, kvbench_gpu.json, engine_bench.json
# Needs nothing from the machine but bash, coreutils and, for a GPU, the
# NVIDIA driver (libcuda.so.1), found with ldconfig or in the usual folders.
# Usage: run.sh [--quick]   (--quick: kvbench gpu with 1 round)
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$kit/out}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/junit" "$work/logs"
runs=3
[[ ${1:-} == --quick ]] && runs=1

driver=""
for lib in $(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / {print $NF}') \
           /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/local/nvidia/lib64/libcuda.so.1 \
           /usr/lib64/libcuda.so.1 /usr/local/cuda/compat/libcuda.so.1; do
  if [[ -e $lib ]]; then driver=$(dirname "$lib"); break; fi
done
export KVCACHE_KIT_DRIVER_DIR=$driver
# Tests start "kvstore/kvstored" from the current folder, as under Bazel.
cd "$kit"
summary="$work/summary.txt"
{
  echo "GPU kit on $(uname -n): driver $([[ -n $driver ]] && echo "in $driver" || echo "not found")"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
      --format=csv,noheader 2>/dev/null | sed 's/^/  GPU: /'
} >"$summary"

passed=0 failed=0 skipped=0
for test in */*_test */*/*_test; do  # kvstore/tiers/gpu_tier_test is two deep
  [[ -x $test && $test != libexec/* ]] || continue  # the wrappers, not the ELF files (nor an unmatched glob)
  name=$(basename "$test")
  log="$work/logs/$name.log"
  timeout 300 "./$test" --gtest_output="xml:$work/junit/$name.xml" >"$log" 2>&1
  rc=$?
  p=$(grep -c '^\[       OK \]' "$log")
  s=$(grep -c '^\[  SKIPPED \] [A-Z]' "$log")
  f=$(grep -c '^\[  FAILED  \] [A-Z].*(' "$log")
  passed=$((passed + p)) skipped=$((skipped + s)) failed=$((failed + f))
  verdict=passed
  if [[ $rc -ne 0 ]]; then verdict="FAILED (exit $rc)"; [[ $f -eq 0 ]] && failed=$((failed + 1)); fi
  why=$(grep -m1 -A1 'Skipped$' "$log" | tail -n1)
  printf '  %-28s %s: %d ok, %d skipped, %d failed%s\n' "$name" "$verdict" "$p" "$s" "$f" \
      "${why:+ ($why)}" >>"$summary"
done

echo "kvbench gpu ($runs rounds):" >>"$summary"
if ! timeout 300 tools/kvbench gpu --runs="$runs" --json --kvstored="$kit/kvstore/kvstored" \
    >"$work/kvbench_gpu.json" 2>"$work/logs/kvbench_gpu.log"; then
  echo "  did not run: $(tail -n 2 "$work/logs/kvbench_gpu.log" | tr '\n' ' ')" >>"$summary"
else
  # One line per case: H2D/D2H at 2 MiB and batched 32 KiB next to a plain
  # cudaMemcpyAsync (the peak), and fetches from kvstored into GPU memory.
  sed -E 's/^\{"case": "([^"]*)", "gbps": ([0-9.]+), "of_peak": ([0-9.]+)\}$/  \1: \2 GB\/s, \3x peak/' \
      "$work/kvbench_gpu.json" >>"$summary"
fi

# The reference engine: this machine's Python, if it has torch and numpy.
echo "engine:" >>"$summary"
py=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch, numpy' 2>/dev/null; then
    py=$candidate
    break
  fi
done
engine_env=(PYTHONPATH="$kit/python:$kit/engine" KVCACHE_BACKEND=portable
            KVCACHE_C_LIB="$kit/python/kvcache/libkvcache_c.so")
# The kit's libraries on this machine's own glibc; Debian's libstdc++ only
# when this machine's is older than the one the kit was built with.
libs=""
if [[ -n $py ]]; then
  for candidate in "$kit/lib" "$kit/lib:$kit/lib/cxx"; do
    if env LD_LIBRARY_PATH="$candidate" "${engine_env[@]}" "$py" -c 'import kvcache' \
        2>"$work/logs/engine_import.log"; then
      libs=$candidate
      break
    fi
  done
fi
if [[ -z $py ]]; then
  echo "  skipped: no python3 with torch and numpy on this machine" >>"$summary"
elif [[ -z $libs ]]; then
  echo "  skipped: the kit's client does not load in $py: $(tail -n 1 "$work/logs/engine_import.log")" \
      >>"$summary"
  failed=$((failed + 1))
else
  device=$("$py" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
  echo "  $("$py" -c 'import sys, torch; print("Python", sys.version.split()[0], "torch", torch.__version__)'), on $device" \
      >>"$summary"
  if "$py" -c 'import pytest' 2>/dev/null; then
    env LD_LIBRARY_PATH="$libs" KVCACHE_ENGINE_DEVICE="$device" "${engine_env[@]}" timeout 300 \
        "$py" -m pytest -q -p no:cacheprovider "$kit/engine/engine_test.py" \
        --junitxml="$work/junit/engine_test.xml" >"$work/logs/engine_test.log" 2>&1
    rc=$?
    line=$(grep -E '[0-9]+ (passed|failed)' "$work/logs/engine_test.log" | tail -n 1)
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1)
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | cut -d' ' -f1)
    passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
    [[ $rc -ne 0 && -z $f ]] && failed=$((failed + 1))
    echo "  engine_test: ${line:-did not finish (exit $rc)}" >>"$summary"
  else
    echo "  engine_test: skipped: no pytest on this machine" >>"$summary"
  fi
  if env LD_LIBRARY_PATH="$libs" "${engine_env[@]}" timeout 300 "$py" "$kit/engine/bench.py" \
      --device="$device" --tokens=512,2048 --runs="$runs" --binding_runs=0 \
      --kvstored="$kit/kvstore/kvstored" --out="$work" >"$work/logs/engine_bench.log" 2>&1; then
    # Time to first token, cold (full prefill) and warm (restored) per path.
    "$py" - "$work/engine_bench.json" >>"$summary" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["ttft"]:
    print(f"  TTFT {r['tokens']} tokens: cold {r['cold_ttft_ms']:.1f} ms; same-host "
          f"{r['same_host_ttft_ms']:.1f} ms ({r['same_host_speedup']:.1f}x, fetch "
          f"{r['same_host_fetch_gbps']:.1f} GB/s); data port {r['data_port_ttft_ms']:.1f} ms "
          f"({r['data_port_speedup']:.1f}x)")
PY
  else
    echo "  bench did not run: $(tail -n 2 "$work/logs/engine_bench.log" | tr '\n' ' ')" >>"$summary"
    failed=$((failed + 1))
  fi
fi
echo "$passed passed, $failed failed, $skipped skipped" >>"$summary"

cp "$summary" "$out/summary.txt"
cp "$work/kvbench_gpu.json" "$work/engine_bench.json" "$out/" 2>/dev/null
tar -C "$work" -czf "$out/junit.tar.gz" junit
tar -C "$work" -czf "$out/logs.tar.gz" logs
cat "$summary"
[[ $failed -eq 0 ]]
