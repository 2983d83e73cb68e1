#!/usr/bin/env bash
# Copies the build's third-party headers and libraries from this (Debian/Ubuntu) machine into
# .gpu_deps/, for a GPU machine whose image has CUDA and PyTorch but not GTest, Google
# Benchmark, nlohmann_json, CLI11, stb, libjpeg or zlib. check.sh uses .gpu_deps/ when it is
# there. .gpu_deps/ is ignored by git; carry it along with the working tree.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.gpu_deps/usr"
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
rm -rf "$root/.gpu_deps"
mkdir -p "$dest/include" "$dest/lib/$arch/cmake" "$dest/share/cmake"

copy_include() { for p in "$@"; do [ -e "/usr/include/$p" ] && cp -a "/usr/include/$p" "$dest/include/"; done; }
copy_include gtest gmock benchmark nlohmann CLI stb jpeglib.h jerror.h jmorecfg.h jpegint.h zlib.h zconf.h
# jpeglib.h includes "jconfig.h", found first beside it (Debian keeps it in the multiarch folder).
[ -e "/usr/include/$arch/jconfig.h" ] && cp -a "/usr/include/$arch/jconfig.h" "$dest/include/"

lib="/usr/lib/$arch"
for pattern in 'libgtest*.a' 'libgmock*.a' 'libbenchmark*' 'libstb.so*' 'libjpeg.so*' 'libz.so*'; do
  for f in $lib/$pattern; do [ -e "$f" ] && cp -a "$f" "$dest/lib/$arch/"; done
done
for d in GTest benchmark; do [ -d "$lib/cmake/$d" ] && cp -a "$lib/cmake/$d" "$dest/lib/$arch/cmake/"; done
for d in nlohmann_json CLI11; do [ -d "/usr/share/cmake/$d" ] && cp -a "/usr/share/cmake/$d" "$dest/share/cmake/"; done
grep -q '^/.gpu_deps/$' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu_deps/' >> "$root/.git/info/exclude"
du -sh "$root/.gpu_deps"
