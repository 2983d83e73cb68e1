#!/usr/bin/env bash
# The CPU side-by-side report: builds the benchmark binaries, then runs our engine, PyTorch and
# OpenBLAS on the same work with the same thread count and prints the table of ratios
# (bench/cpu_report.py does the running; bench/README.md says how to read the result).
#
#   bash bench/cpu_report.sh [--quick] [--threads N] [--out PREFIX] [--only PARTS]
#                            [--update-readme] [--repetitions R]
#                            [--build-dir DIR] [--no-build] [--install-openblas]
#
# --build-dir   where the binaries are (default: $BUILD_DIR or build/); configured with
#               scripts/build.sh if it has not been configured yet
# --no-build    use the binaries as they are (parts whose binary is missing are skipped)
# --install-openblas  apt-get install libopenblas-dev first (needs root), so that the
#               OpenBLAS column can be filled; without it the column is left empty when
#               OpenBLAS is absent
# Defaults: all cores, PREFIX = DIR/bench_report/cpu (writes PREFIX.md and PREFIX.json).
# A full run takes about 10 to 15 minutes on 2 cores; --quick about 3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
do_build=1 install_openblas=0
report_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$(cd "$2" 2>/dev/null && pwd || echo "$2")"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --install-openblas) install_openblas=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) report_args+=("$1"); shift ;;
  esac
done

if [ "$install_openblas" = 1 ] && ! pkg-config --exists openblas 2>/dev/null; then
  apt-get install -y libopenblas-dev >/dev/null
  # CMake looks for a package it did not find again at the next configure.
  [ -f "$build/CMakeCache.txt" ] && cmake "$build" >/dev/null
fi

# Builds each target on its own, so that one that does not compile leaves the others' rows.
build_targets() {
  for target in "$@"; do
    if ! cmake --build "$build" --parallel "$(nproc)" --target "$target" >"$build/bench_build_$target.log" 2>&1; then
      echo "warning: $target did not build (see $build/bench_build_$target.log); its rows are skipped" >&2
    fi
  done
}

if [ "$do_build" = 1 ]; then
  # A build folder configured without the benchmarks gets them switched on.
  if [ -f "$build/CMakeCache.txt" ] && grep -q '^SHALLOW_BENCH:BOOL=OFF' "$build/CMakeCache.txt"; then
    cmake "$build" -DSHALLOW_BENCH=ON >/dev/null
  fi
  if [ ! -f "$build/CMakeCache.txt" ]; then
    BUILD_DIR="$build" "$root/scripts/build.sh" -DSHALLOW_BENCH=ON --target fma_peak
  fi
  echo "building the benchmark binaries in $build ..." >&2
  build_targets fma_peak bench_gemm bench_attention bench_conv bench_vit bench_resnet bench_eeg_epoch
  # Targets that exist only in some trees or on some machines (CMake has re-run by now).
  grep -q '^OPENBLAS_FOUND:INTERNAL=1' "$build/CMakeCache.txt" && build_targets openblas_gemm
  [ -f "$root/bench/bench_gemm_bf16.cpp" ] && build_targets bench_gemm_bf16
fi

exec python3 "$root/bench/cpu_report.py" --build-dir "$build" ${report_args[@]+"${report_args[@]}"}
