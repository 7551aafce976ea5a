#!/usr/bin/env bash
# Packs binaries into a self-contained folder that runs on another Linux
# machine (another distribution, another glibc) with nothing installed but
# the NVIDIA driver:
#
#   KIT/libexec/NAME     the binaries, stripped
#   KIT/lib/             every shared library they load; not libcuda (the
#                        driver's own). glibc's core libraries and Debian's
#                        dynamic loader are in KIT/lib/sys, and libstdc++ and
#                        libgcc_s in KIT/lib/cxx, so that another machine's
#                        process (its Python) can load kit libraries from
#                        KIT/lib alone, on its own glibc
#   KIT/python/...       shared libraries given as lib:DEST=PATH (their
#                        libraries go to KIT/lib too) and plain files given
#                        as file:DEST=PATH, placed at KIT/DEST
#   KIT/<pkg>/NAME       a wrapper per binary that runs it through the kit's
#                        loader with only KIT/lib (and the driver's folder)
#                        on its library path; placed where Bazel's runfiles
#                        would put it, so tests that start
#                        "kvstore/kvstored" from KIT find the wrapper
#   KIT/run.sh           runs everything (tools/gpu_kit/kit_run.sh)
#
# Usage: make_kit.sh KIT SPEC...   SPEC: PKG/NAME=PATH (a built ELF binary),
#        lib:DEST=PATH (a shared library) or file:DEST=PATH (any file)
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 KIT SPEC..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
kit=$1
shift
rm -rf "$kit"
mkdir -p "$kit/lib/sys" "$kit/lib/cxx" "$kit/libexec"
kit=$(cd "$kit" && pwd)

# Copies every library the system loader resolves for ELF file $1 into the
# kit, but the driver's.
copy_libraries() {
  while read -r lib; do
    local base dir=lib
    base=$(basename "$lib")
    case $base in
      libcuda.so*|libnvidia*) continue ;;
      ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|libutil.so*)
        dir=lib/sys ;;
      libstdc++.so*|libgcc_s.so*) dir=lib/cxx ;;
    esac
    [[ -e $kit/$dir/$base ]] && continue
    cp -L "$lib" "$kit/$dir/"
    chmod u+w "$kit/$dir/$base"
    strip --strip-unneeded "$kit/$dir/$base" 2>/dev/null || true
  done < <(ldd "$1" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}')
}

loader=""
for spec in "$@"; do
  name=${spec%%=*}
  path=${spec#*=}
  case $name in
    file:*)
      mkdir -p "$kit/$(dirname "${name#file:}")"
      cp -L "$path" "$kit/${name#file:}"
      continue ;;
    lib:*)
      mkdir -p "$kit/$(dirname "${name#lib:}")"
      cp -L "$path" "$kit/${name#lib:}"
      chmod u+w "$kit/${name#lib:}"
      strip --strip-unneeded "$kit/${name#lib:}" 2>/dev/null || true
      copy_libraries "$path"
      continue ;;
  esac
  base=$(basename "$name")
  [[ -x $path ]] || { echo "make_kit: $path is not an executable" >&2; exit 1; }
  cp -L "$path" "$kit/libexec/$base"
  chmod u+w "$kit/libexec/$base"
  strip --strip-unneeded "$kit/libexec/$base" 2>/dev/null || true
  copy_libraries "$path"
  [[ -n $loader ]] || loader=$(ldd "$path" | awk '/ld-linux/ {print ($3 ~ /^\//) ? $3 : $1; exit}')
  # The wrapper, at its package's path under the kit, as the runfiles
  # layout has it; `up` climbs from there back to the kit.
  mkdir -p "$kit/$(dirname "$name")"
  up=$(dirname "$name" | sed 's|[^/][^/]*|..|g')
  cat >"$kit/$name" <<WRAP
#!/bin/sh
kit=\$(cd "\$(dirname "\$0")/$up" && pwd)
exec "\$kit/lib/sys/$(basename "$loader")" --library-path "\$kit/lib:\$kit/lib/cxx:\$kit/lib/sys\${KVCACHE_KIT_DRIVER_DIR:+:\$KVCACHE_KIT_DRIVER_DIR}" "\$kit/libexec/$base" "\$@"
WRAP
  chmod +x "$kit/$name"
done
[[ -n $loader ]] || { echo "make_kit: no binary given" >&2; exit 1; }
cp -L "$loader" "$kit/lib/sys/"
chmod u+w "$kit/lib/sys/$(basename "$loader")"
cp "$here/kit_run.sh" "$kit/run.sh"
chmod +x "$kit/run.sh"
echo "make_kit: $kit: $(ls "$kit/libexec" | wc -l) binaries, $(find "$kit/lib" -type f | wc -l) libraries, $(du -sh "$kit" | cut -f1)"
