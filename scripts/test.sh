#!/usr/bin/env bash
# Builds and runs every test, then the same tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (set SANITIZE=0 to skip that second pass), then the kernel tests
# under ThreadSanitizer (SANITIZE_THREADS=0 skips it).
#   sudo bash scripts/test.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"

echo "== release build and tests"
BUILD_DIR="$root/build" bash "$root/scripts/build.sh" -DSHALLOW_BENCH=ON
ctest --test-dir "$root/build" --output-on-failure --parallel "$(nproc)"

if [ "${SANITIZE:-1}" != "0" ]; then
  # The sanitizer pass covers the engine, kernels, weights_import and models suites: every op,
  # every file reader (malformed files included) and every model. The app suites, which train
  # small models end to end, run in the release pass above only.
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  suites=(test_kernels test_engine test_weights_import test_models)
  # -O1 with line tables: quick to build, and the reports still name file and line.
  BUILD_DIR="$root/build-sanitize" bash "$root/scripts/build.sh" \
    -DSHALLOW_SANITIZE=ON -DSHALLOW_BENCH=OFF -DSHALLOW_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" --target "${suites[@]}"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/build-sanitize" --output-on-failure --parallel "$(nproc)" \
    -L '^(kernels|engine|weights_import|models)$'
fi

if [ "${SANITIZE_THREADS:-1}" != "0" ]; then
  # The kernels' threads share packed blocks and split work without locks; a race there
  # corrupts a result only when the timing happens to line up, which the passes above may miss,
  # while ThreadSanitizer reports it on every run. (~2 min: the kernels and their tests only.)
  echo "== ThreadSanitizer build and kernel tests"
  BUILD_DIR="$root/build-tsan" bash "$root/scripts/build.sh" \
    -DSHALLOW_SANITIZE_THREADS=ON -DSHALLOW_BENCH=OFF -DSHALLOW_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" --target test_kernels
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$root/build-tsan" --output-on-failure \
    --parallel "$(nproc)" -L '^kernels$'
fi
