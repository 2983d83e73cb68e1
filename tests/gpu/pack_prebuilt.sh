#!/usr/bin/env bash
# Builds test_gpu, bench_eeg_epoch and every bench_cuda_* for sm_90a (H100, H200) with portable
# CPU code, in build-gpu-prebuilt/, and copies them, stripped, into .gpu_prebuilt/ (git-ignored)
# with the one shared library they need beyond CUDA's (Google Benchmark's) in .gpu_prebuilt/lib.
# On the GPU machine, carrying .gpu_prebuilt (about 60 MB: the working tree and what is carried
# must stay under 64 MiB):
#   SHALLOW_CHECK_PREBUILT=.gpu_prebuilt bash tests/gpu/check.sh
# check.sh builds there itself when these binaries do not start (that needs .gpu_deps from
# pack_deps.sh where the machine lacks the third-party headers).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-gpu-prebuilt"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHALLOW_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a-real -DSHALLOW_NATIVE=OFF -DSHALLOW_TESTS=ON -DSHALLOW_BENCH=ON > /dev/null
benches=$(cd "$root/bench" && ls bench_cuda_*.cpp | sed 's/\.cpp$//')
cmake --build "$build" --target test_gpu bench_eeg_epoch $benches
rm -rf "$root/.gpu_prebuilt"
mkdir -p "$root/.gpu_prebuilt/lib"
for b in test_gpu bench_eeg_epoch $benches; do cp "$build/bin/$b" "$root/.gpu_prebuilt/"; done
strip "$root"/.gpu_prebuilt/test_gpu "$root"/.gpu_prebuilt/bench_*
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
cp -a /usr/lib/"$arch"/libbenchmark*.so* "$root/.gpu_prebuilt/lib/" 2>/dev/null || true
grep -q '^/.gpu_prebuilt/$' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu_prebuilt/' >> "$root/.git/info/exclude"
du -sh "$root/.gpu_prebuilt"
