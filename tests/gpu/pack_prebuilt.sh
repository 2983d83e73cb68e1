#!/usr/bin/env bash
# Builds test_gpu, bench_eeg_epoch and every bench_cuda_* for sm_90a (H100, H200) with portable
# CPU code, in build-gpu-prebuilt/, strips them and packs them, with the one shared library they
# need beyond CUDA's (Google Benchmark's, in lib/), into .gpu_prebuilt/bins.tar.xz (git-ignored;
# about 7 MB, where the loose binaries, about 70 MB, would not fit the 64 MiB that a GPU run
# carries). On the GPU machine, carrying .gpu_prebuilt:
#   SHALLOW_CHECK_PREBUILT=.gpu_prebuilt bash tests/gpu/check.sh
# (check.sh unpacks the archive). check.sh builds there itself when these binaries do not start
# (that needs .gpu_deps from pack_deps.sh where the machine lacks the third-party headers).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-gpu-prebuilt"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHALLOW_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a-real -DSHALLOW_NATIVE=OFF -DSHALLOW_TESTS=ON -DSHALLOW_BENCH=ON > /dev/null
benches=$(cd "$root/bench" && ls bench_cuda_*.cpp | sed 's/\.cpp$//')
cmake --build "$build" --target test_gpu bench_eeg_epoch $benches
stage=$(mktemp -d)
mkdir -p "$stage/lib"
for b in test_gpu bench_eeg_epoch $benches; do cp "$build/bin/$b" "$stage/"; done
strip "$stage"/test_gpu "$stage"/bench_*
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
cp -a /usr/lib/"$arch"/libbenchmark*.so* "$stage/lib/" 2>/dev/null || true
rm -rf "$root/.gpu_prebuilt"
mkdir -p "$root/.gpu_prebuilt"
(cd "$stage" && tar cf - .) | xz -6 -T2 > "$root/.gpu_prebuilt/bins.tar.xz"
rm -rf "$stage"
grep -q '^/.gpu_prebuilt/$' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu_prebuilt/' >> "$root/.git/info/exclude"
du -sh "$root/.gpu_prebuilt"
