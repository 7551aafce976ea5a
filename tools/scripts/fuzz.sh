#!/usr/bin/env bash
# Builds our libFuzzer targets (tools/fuzz/*_fuzzer.cc: the FetchChunk
# decoder, the NVMe record header decoder, byte-size parsing, the block
# directory reader; and the data-port and same-host wire fuzzers, which
# drive a real kvstored: $KVSTORED, default bazel-bin/kvstore/kvstored)
# with clang-14, ASan and UBSan, and runs each for SECONDS (default 10) from
# its checked-in corpus (tools/fuzz/corpus/NAME). New inputs it finds go to a scratch copy;
# a crash leaves its input in $OUT (default /tmp/kvcache-fuzz) and fails the
# run. Installs clang-14 and libclang-rt-14-dev when missing.
# Usage: tools/scripts/fuzz.sh [SECONDS]     (--seeds: rewrite the corpus seeds)
#        FUZZERS="block_directory" tools/scripts/fuzz.sh 600   (only those)
# An input that runs past 10 s counts as a crash (a hang).
# Ends with one line per fuzzer: executions, and "N fuzzers, N crashed".
set -uo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v clang++-14 >/dev/null || need+=(clang-14)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" ||
    need+=(libclang-rt-14-dev)
if ((${#need[@]})); then
  if [[ -n ${KVCACHE_NO_INSTALL:-} ]]; then
    echo "fuzz: ${need[*]} missing (tools/scripts/install_deps.sh installs them)"
    exit 1
  fi
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      --no-install-recommends "${need[@]}" || exit 1
fi
out=${OUT:-/tmp/kvcache-fuzz}
mkdir -p "$out"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
flags=(-std=c++20 -O1 -g -I. -fsanitize=address,undefined -fno-sanitize-recover=undefined)
libs=($(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format) -lxxhash)
# What each target compiles besides itself.
declare -A sources=(
  [fetch_chunk]="proto/fetch_chunk_codec.cc"
  [nvme_header]="offload/nvme_record.cc key/checksum.cc key/checksum_avx2.cc common/bulk_copy.cc common/bulk_copy_avx2.cc"
  [byte_size]="common/byte_size.cc"
  [block_directory]="client/block_directory_reader.cc key/block_key.cc common/bulk_copy.cc common/bulk_copy_avx2.cc"
  [data_port_wire]=""
  [local_wire]=""
)
compile() {  # NAME MAIN [-fsanitize=fuzzer]
  local name=$1 main=$2 extra=${3:-}
  local objs=()
  for src in ${sources[$name]}; do
    local obj=$build/$name-$(basename "$src" .cc).o
    local more=()
    [[ $src == *avx2* ]] && more=(-mavx2)
    clang++-14 "${flags[@]}" "${more[@]}" -c "$src" -o "$obj" || return 1
    objs+=("$obj")
  done
  clang++-14 "${flags[@]}" $extra "$main" "${objs[@]}" "${libs[@]}" -o "$build/$name$4"
}
if [[ ${1:-} == --seeds ]]; then
  sources[seeds]="${sources[fetch_chunk]} ${sources[nvme_header]}"
  mkdir -p tools/fuzz/corpus/{fetch_chunk,nvme_header,byte_size,block_directory,data_port_wire,local_wire}
  compile seeds tools/fuzz/write_seeds.cc "" "" && "$build/seeds" tools/fuzz/corpus || exit 1
  echo "fuzz: seeds written to tools/fuzz/corpus"
  exit 0
fi
seconds=${1:-10}
crashed=0
fuzzers=(fetch_chunk nvme_header byte_size block_directory data_port_wire local_wire)
# The wire fuzzers talk to a real kvstored (tools/fuzz/daemon_under_fuzz.h).
if [[ -z ${KVSTORED:-} ]]; then
  [[ -x bazel-bin/kvstore/kvstored ]] || bazel build //kvstore:kvstored || exit 1
  export KVSTORED=$PWD/bazel-bin/kvstore/kvstored
fi
[[ -n ${FUZZERS:-} ]] && read -ra fuzzers <<<"$FUZZERS"  # only these
for name in "${fuzzers[@]}"; do
  if ! compile "$name" "tools/fuzz/${name}_fuzzer.cc" -fsanitize=fuzzer "_fuzzer"; then
    echo "$name: did not build"
    crashed=$((crashed + 1))
    continue
  fi
  corpus=$build/corpus-$name
  mkdir -p "$corpus"
  cp tools/fuzz/corpus/$name/* "$corpus/" 2>/dev/null
  log=$build/$name.log
  if "$build/${name}_fuzzer" -max_total_time="$seconds" -timeout=10 -artifact_prefix="$out/$name-" \
      -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "$name: ${runs:-?} executions in ${seconds}s, no crash"
  else
    crashed=$((crashed + 1))
    echo "$name: CRASHED; input in $out (log: $out/$name.log)"
    cp "$log" "$out/$name.log"
    grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log"
  fi
done
echo "${#fuzzers[@]} fuzzers, $crashed crashed"
((crashed == 0))
