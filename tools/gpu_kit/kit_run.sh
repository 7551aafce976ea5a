#!/usr/bin/env bash
# Runs what the GPU kit holds (made by tools/gpu_kit/make_kit.sh): every GPU
# test (JUnit XML), then `kvbench gpu`, and prints a one-screen summary.
# Results go under $OUT (default: KIT/out) as a few files:
#   summary.txt, junit.tar.gz, logs.tar.gz, kvbench_gpu.json
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
for test in */*_test; do
  [[ -x $test && $test != libexec/* ]] || continue  # the wrappers, not the ELF files
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
echo "$passed passed, $failed failed, $skipped skipped" >>"$summary"

cp "$summary" "$out/summary.txt"
cp "$work/kvbench_gpu.json" "$out/" 2>/dev/null
tar -C "$work" -czf "$out/junit.tar.gz" junit
tar -C "$work" -czf "$out/logs.tar.gz" logs
cat "$summary"
[[ $failed -eq 0 ]]
