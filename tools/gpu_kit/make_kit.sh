#!/usr/bin/env bash
# Packs binaries into a self-contained folder that runs on another Linux
# machine (another distribution, another glibc) with nothing installed but
# the NVIDIA driver:
#
#   KIT/libexec/NAME     the binaries, stripped
#   KIT/lib/             every shared library they load, Debian's dynamic
#                        loader included; not libcuda (the driver's own)
#   KIT/<pkg>/NAME       a wrapper per binary that runs it through the kit's
#                        loader with only KIT/lib (and the driver's folder)
#                        on its library path; placed where Bazel's runfiles
#                        would put it, so tests that start
#                        "kvstore/kvstored" from KIT find the wrapper
#   KIT/run.sh           runs everything (tools/gpu_kit/kit_run.sh)
#
# Usage: make_kit.sh KIT PKG/NAME=PATH...   (PATH: a built ELF binary)
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 KIT PKG/NAME=PATH..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
kit=$1
shift
rm -rf "$kit"
mkdir -p "$kit/lib" "$kit/libexec"
kit=$(cd "$kit" && pwd)

loader=""
for spec in "$@"; do
  name=${spec%%=*}
  path=${spec#*=}
  base=$(basename "$name")
  [[ -x $path ]] || { echo "make_kit: $path is not an executable" >&2; exit 1; }
  cp -L "$path" "$kit/libexec/$base"
  chmod u+w "$kit/libexec/$base"
  strip --strip-unneeded "$kit/libexec/$base" 2>/dev/null || true
  # Every library the system loader resolves for it, but the driver's.
  while read -r lib; do
    case $(basename "$lib") in
      libcuda.so*|libnvidia*) continue ;;
    esac
    [[ -e $kit/lib/$(basename "$lib") ]] && continue
    cp -L "$lib" "$kit/lib/"
    chmod u+w "$kit/lib/$(basename "$lib")"
    strip --strip-unneeded "$kit/lib/$(basename "$lib")" 2>/dev/null || true
  done < <(ldd "$path" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}')
  [[ -n $loader ]] || loader=$(ldd "$path" | awk '/ld-linux/ {print ($3 ~ /^\//) ? $3 : $1; exit}')
  # The wrapper: depth 1 under the kit, as the runfiles layout has it.
  mkdir -p "$kit/$(dirname "$name")"
  cat >"$kit/$name" <<WRAP
#!/bin/sh
kit=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$kit/lib/$(basename "$loader")" --library-path "\$kit/lib\${KVCACHE_KIT_DRIVER_DIR:+:\$KVCACHE_KIT_DRIVER_DIR}" "\$kit/libexec/$base" "\$@"
WRAP
  chmod +x "$kit/$name"
done
cp -L "$loader" "$kit/lib/"
chmod u+w "$kit/lib/$(basename "$loader")"
cp "$here/kit_run.sh" "$kit/run.sh"
chmod +x "$kit/run.sh"
echo "make_kit: $kit: $# binaries, $(ls "$kit/lib" | wc -l) libraries, $(du -sh "$kit" | cut -f1)"
