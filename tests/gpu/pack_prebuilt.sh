#!/usr/bin/env bash
# Builds test_gpu, bench_eeg_epoch and every bench_cuda_* for sm_90a (H100, H200) with portable CPU code, in
# build-gpu-prebuilt/, and copies them into .gpu_prebuilt/ (git-ignored) with the third-party
# libraries of pack_deps.sh in .gpu_deps/. On the GPU machine, carrying both:
#   SHALLOW_CHECK_PREBUILT=.gpu_prebuilt bash tests/gpu/check.sh
# check.sh builds there itself when these binaries do not start.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-gpu-prebuilt"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHALLOW_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a -DSHALLOW_NATIVE=OFF -DSHALLOW_TESTS=ON -DSHALLOW_BENCH=ON > /dev/null
benches=$(cd "$root/bench" && ls bench_cuda_*.cpp | sed 's/\.cpp$//')
cmake --build "$build" --target test_gpu bench_eeg_epoch $benches
bash "$root/tests/gpu/pack_deps.sh"
rm -rf "$root/.gpu_prebuilt"
mkdir -p "$root/.gpu_prebuilt"
for b in test_gpu bench_eeg_epoch $benches; do cp "$build/bin/$b" "$root/.gpu_prebuilt/"; done
grep -q '^/.gpu_prebuilt/$' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu_prebuilt/' >> "$root/.git/info/exclude"
du -sh "$root/.gpu_prebuilt"
