#!/usr/bin/env bash
# The GPU kit, proven on a machine without a GPU: packed from the built
# binaries, it is at most 64 MiB, every binary's libraries resolve inside it
# (the driver's libcuda aside), and run with an empty environment (nothing
# from Debian on its library path but the kit's own) every binary starts:
# the GPU tests run and skip their GPU cases with their message.
set -euo pipefail
runfiles=${RUNFILES_DIR:-$0.runfiles}/kvcache
kit=$TEST_TMPDIR/kit
specs=()
for path in "$@"; do specs+=("$path=$runfiles/$path"); done
"$runfiles/tools/gpu_kit/make_kit.sh" "$kit" "${specs[@]}"

fail() { echo "FAIL: $*" >&2; exit 1; }
bytes=$(du -sb "$kit" | cut -f1)
((bytes <= 64 << 20)) || fail "the kit is $((bytes >> 20)) MiB, over 64 MiB"
loader=$(ls "$kit"/lib/ld-linux*)
for bin in "$kit"/libexec/*; do
  while read -r line; do
    case $line in
      *linux-vdso*|"") continue ;;
      *"=> $kit/lib/"*|"$kit/lib/"*) continue ;;
      *libcuda.so*) continue ;;  # the driver's, on the GPU machine
      *) fail "$(basename "$bin") loads from outside the kit: $line" ;;
    esac
  done < <("$loader" --library-path "$kit/lib" --list "$bin")
done

out=$TEST_TMPDIR/out
env -i OUT="$out" "$kit/run.sh" --quick || fail "run.sh failed: $(cat "$out/summary.txt")"
summary=$(cat "$out/summary.txt")
echo "$summary"
tests=$(printf '%s\n' "$@" | grep -c '_test$')
[[ $(grep -c ' passed: ' <<<"$summary") -eq $tests ]] || fail "not every GPU test ran and passed"
grep -q 'no GPU here' <<<"$summary" || fail "no test said why it skipped"
grep -q '^[0-9]* passed, 0 failed' <<<"$summary" || fail "a test failed"
tar -tzf "$out/junit.tar.gz" | grep -q '\.xml$' || fail "no JUnit XML"
echo "kit: $((bytes >> 20)) MiB, $tests GPU tests started and skipped cleanly"
