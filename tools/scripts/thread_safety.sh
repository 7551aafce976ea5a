#!/usr/bin/env bash
# Enforces our lock annotations with clang's thread-safety analysis: every
# C++ file of ours (not the CUDA .cu kernels) is compiled by clang-14 with
# -fsyntax-only -Wthread-safety -Werror=thread-safety, so touching an
# ABSL_GUARDED_BY member without its Mutex, or calling a function without a
# lock it ABSL_EXCLUSIVE_LOCKS_REQUIRED, fails the run. (GCC, which builds
# everything else, ignores the annotations.) Installs clang-14 when missing.
# Ends with "N files checked, N failed"; exit status 1 if any failed.
# Usage: tools/scripts/thread_safety.sh [FILE.cc...]
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang++-14 >/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      --no-install-recommends clang-14 || exit 1
fi
# The generated protobuf and gRPC headers our sources include.
bazel build //proto/... >/dev/null 2>&1 || { echo "thread_safety: bazel build //proto/... failed"; exit 1; }
cuda=""
for dir in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
  [[ -n $dir && -e $dir/include/cuda_runtime.h ]] && { cuda=$dir/include; break; }
done
if (($# > 0)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files '*.cc' | grep -E '^(client|common|gpu|key|kvstore|membership|offload|proto|tests|tools)/')
fi
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
check() {
  local f=$1 out=$2
  clang++-14 -std=c++20 -fsyntax-only -Wthread-safety -Werror=thread-safety \
      -Wno-unknown-warning-option -I. -Ibazel-bin -Ibazel-bin/proto \
      ${cuda:+-isystem "$cuda"} -isystem /usr/include/python3.11 "$f" >"$out" 2>&1
}
export -f check
export cuda
failed=0
i=0
for f in "${files[@]}"; do
  i=$((i + 1))
  out="$log/$i.txt"
  if ! check "$f" "$out"; then
    failed=$((failed + 1))
    echo "== $f"
    grep -E 'error|warning' "$out" | head -n 20
  fi
done
echo "${#files[@]} files checked, $failed failed"
((failed == 0))
