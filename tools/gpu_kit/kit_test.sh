#!/usr/bin/env bash
# The GPU kit, proven on a machine without a GPU: packed from the built
# binaries, it is at most 64 MiB, every binary's libraries resolve inside it
# (the driver's libcuda aside), and run with an empty environment (nothing
# from Debian on its library path but the kit's own) every binary starts:
# the GPU tests run and skip their GPU cases with their message; and the
# reference engine's test and benchmark run in this machine's Python (in the
# GPU machine's place) with the kit's C-ABI client, on the CPU.
set -euo pipefail
runfiles=${RUNFILES_DIR:-$0.runfiles}/kvcache
kit=$TEST_TMPDIR/kit
# A binary's path is where it goes in the kit; KIND:DEST=PATH says both.
specs=()
binaries=()
for arg in "$@"; do
  if [[ $arg == *=* ]]; then
    specs+=("${arg%%=*}=$runfiles/${arg#*=}")
  else
    specs+=("$arg=$runfiles/$arg")
    binaries+=("$arg")
  fi
done
"$runfiles/tools/gpu_kit/make_kit.sh" "$kit" "${specs[@]}"

fail() { echo "FAIL: $*" >&2; exit 1; }
bytes=$(du -sb "$kit" | cut -f1)
((bytes <= 64 << 20)) || fail "the kit is $((bytes >> 20)) MiB, over 64 MiB"
loader=$(ls "$kit"/lib/sys/ld-linux*)
for bin in "$kit"/libexec/* "$kit"/python/kvcache/libkvcache_c.so; do
  while read -r line; do
    case $line in
      *linux-vdso*|"") continue ;;
      *"=> $kit/lib/"*|"$kit/lib/"*) continue ;;
      *libcuda.so*) continue ;;  # the driver's, on the GPU machine
      *) fail "$(basename "$bin") loads from outside the kit: $line" ;;
    esac
  done < <("$loader" --library-path "$kit/lib:$kit/lib/cxx:$kit/lib/sys" --list "$bin")
done

out=$TEST_TMPDIR/out
env -i OUT="$out" "$kit/run.sh" --quick || fail "run.sh failed: $(cat "$out/summary.txt")"
summary=$(cat "$out/summary.txt")
echo "$summary"
tests=$(printf '%s\n' "${binaries[@]}" | grep -c '_test$')
[[ $(grep -c ' passed: ' <<<"$summary") -eq $tests ]] || fail "not every GPU test ran and passed"
grep -q 'no GPU here' <<<"$summary" || fail "no test said why it skipped"
grep -q '^[0-9]* passed, 0 failed' <<<"$summary" || fail "a test failed"
# (The listing is read whole: grep -q stopping early would fail tar with
# SIGPIPE under pipefail.)
junit=$(tar -tzf "$out/junit.tar.gz")
grep -q '\.xml$' <<<"$junit" || fail "no JUnit XML"
# The engine, with this machine's Python and torch in the GPU machine's
# place: its whole test passes and the TTFT benchmark reports both lengths.
grep -qE '^  engine_test: [0-9]+ passed in' <<<"$summary" || fail "the engine test did not pass"
grep -q '^  TTFT 2048 tokens: cold' <<<"$summary" || fail "the engine benchmark did not report"
grep -q 'engine_test\.xml$' <<<"$junit" || fail "no JUnit XML of the engine"
echo "kit: $((bytes >> 20)) MiB ($bytes bytes), $tests GPU tests started and skipped cleanly; the engine ran"
