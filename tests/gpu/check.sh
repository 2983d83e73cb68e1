#!/usr/bin/env bash
# The CUDA check for a fresh GPU machine: GPU summary, a CUDA build of only what the check needs
# (test_gpu and bench_cuda_gemm, for the GPU at hand only), the GPU tests (ctest -L gpu), the
# GEMM benchmark, a PyTorch side when torch is importable, and a report (report.md,
# report.json) in $OUT when set, else in <build folder>/report/. Every step has a time limit and a
# failed step is reported, not fatal: the script always gets to the report. Under 8 minutes
# on an H100 with 16 cores; never more than SHALLOW_CHECK_BUDGET (540) seconds of steps.
#
#   bash tests/gpu/check.sh            (SHALLOW_CHECK_CPU=1 also builds and runs test_engine;
#                                       SHALLOW_CHECK_BUILD_DIR=DIR builds in DIR, not build-gpu/;
#                                       SHALLOW_CHECK_SKIP="step step" leaves those steps out)
#
# Third-party headers and libraries: where the machine lacks them, run tests/gpu/pack_deps.sh
# on a development machine first and carry the .gpu_deps/ folder it makes.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build="${SHALLOW_CHECK_BUILD_DIR:-$root/build-gpu}"  # another build folder can be reused
report="$build/report"
mkdir -p "$report"
rm -f "$report"/*.xml "$report"/*.json "$report"/report.md "$report"/profile.txt  # results of an earlier run
: > "$report/steps.tsv"
log="$report/check.log"
: > "$log"
jobs=$(nproc 2>/dev/null || echo 4)
started=$(date +%s)
# Every step ends by this deadline (9 minutes unless SHALLOW_CHECK_BUDGET says otherwise), so
# the whole run, report included, stays under 10 minutes even when steps hang.
deadline=$(( started + ${SHALLOW_CHECK_BUDGET:-540} ))
dest="${OUT:-}"

# Writes the report from what exists so far and copies it to $OUT, so that a run stopped from
# outside still leaves a report of the steps it finished.
publish() {
  timeout 30 python3 "$root/tests/gpu/make_report.py" "$report" >> "$log" 2>&1
  if [ -n "$dest" ]; then
    mkdir -p "$dest"
    for f in report.md report.json check.log ctest_gpu.xml profile.txt; do
      [ -f "$report/$f" ] && cp "$report/$f" "$dest/"
    done
    # every benchmark's figures in one file (the way back takes at most 8 files)
    python3 -c 'import json, sys, glob, os; d = sys.argv[1]; json.dump({os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob(d + "/*.json")) if not f.endswith("report.json")}, open(sys.argv[2], "w"), indent=1)' "$report" "$dest/benchmarks.json" 2>> "$log"
  fi
}

# step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit (cut to what is left before the
# deadline), logs it, records its status, and publishes the report so far.
step() {
  local name=$1 limit=$2
  shift 2
  local t0 rc
  case " ${SHALLOW_CHECK_SKIP:-} " in *" $name "*)  # steps named there are left out
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped" 0 0 >> "$report/steps.tsv"
    echo "=== $name: skipped (SHALLOW_CHECK_SKIP)" | tee -a "$log"
    return 0 ;;
  esac
  t0=$(date +%s)
  local left=$(( deadline - t0 ))
  if [ $left -lt 10 ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "no time left" 124 0 >> "$report/steps.tsv"
    echo "=== $name: no time left" | tee -a "$log"
    return 124
  fi
  [ $limit -gt $left ] && limit=$left
  echo "=== $name (limit ${limit}s): $*" | tee -a "$log"
  timeout --kill-after=15 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  local secs=$(( $(date +%s) - t0 ))
  local status=ok
  [ $rc -ne 0 ] && status=failed
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status=timeout
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" >> "$report/steps.tsv"
  echo "=== $name: $status (rc $rc, ${secs}s)" | tee -a "$log"
  publish
  return $rc
}

# ---- the machine
step nvidia_smi 30 nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
  > "$report/gpu.csv" 2>/dev/null || echo "unknown,unknown,unknown,unknown" > "$report/gpu.csv"
cap=$(cut -d, -f4 "$report/gpu.csv" | head -1 | tr -d ' .')
case "$cap" in ''|*[!0-9]*) cap=90 ;; esac
echo "compute capability: $cap" | tee -a "$log"
# Hopper builds its architecture-specific image (sm_90a), which the wgmma GEMM needs.
case "$cap" in 90) arch=90a ;; *) arch=$cap ;; esac

# ---- dependencies carried from a development machine, if any
if [ -d "$root/.gpu_deps/usr" ]; then
  deps="$root/.gpu_deps/usr"
  export CMAKE_PREFIX_PATH="$deps${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$(ls -d "$deps"/lib/*-linux-gnu 2>/dev/null | head -1):${LD_LIBRARY_PATH:-}"
  echo "using carried dependencies in $deps" | tee -a "$log"
fi

# nvcc where CUDA installs it, if it is not on the PATH already.
if ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
echo "nvcc: $(command -v nvcc || echo 'not found'); $(nvcc --version 2>/dev/null | tail -1)" | tee -a "$log"

# Ninja for a new build folder; an existing one keeps the generator it was made with.
generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja > /dev/null; then generator=(-G Ninja); fi

# ---- build: only the GPU test and benchmark and what they link, for this GPU's architecture.
# SHALLOW_CHECK_PREBUILT=DIR names test_gpu and the benchmarks built elsewhere (pack_prebuilt.sh,
# portable CPU code, sm_90a): used when they start here, which saves the build's minutes.
bin="$build/bin"
prebuilt="${SHALLOW_CHECK_PREBUILT:-}"
if [ -n "$prebuilt" ]; then
  # pack_prebuilt.sh carries them as one archive
  if [ -f "$prebuilt/bins.tar.xz" ] && [ ! -x "$prebuilt/test_gpu" ]; then
    tar xJf "$prebuilt/bins.tar.xz" -C "$prebuilt" >> "$log" 2>&1
  fi
  # CUDA's libraries where the toolkit or the pip wheels keep them
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
           $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, d, "lib") for d in os.listdir(p)))' 2>/dev/null); do
    [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
  [ -d "$prebuilt/lib" ] && export LD_LIBRARY_PATH="$(cd "$prebuilt/lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if timeout 60 "$prebuilt/test_gpu" --gtest_list_tests > /dev/null 2>> "$log"; then
    bin="$prebuilt"
    printf 'prebuilt\tok\t0\t0\n' >> "$report/steps.tsv"
    echo "using the prebuilt binaries in $prebuilt" | tee -a "$log"
  else
    printf 'prebuilt\tfailed\t1\t0\n' >> "$report/steps.tsv"
    echo "the prebuilt binaries do not start here; building" | tee -a "$log"
    ldd "$prebuilt/test_gpu" >> "$log" 2>&1
  fi
fi
if [ "$bin" = "$build/bin" ]; then
  step configure 240 cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DSHALLOW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DSHALLOW_TESTS=ON -DSHALLOW_BENCH=ON \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5  # CMake 4 refuses older package files without it
  step build_test_gpu 360 cmake --build "$build" -j "$jobs" --target test_gpu
  step build_bench 240 cmake --build "$build" -j "$jobs" --target bench_cuda_gemm bench_cuda_vit \
    bench_eeg_epoch $(cd "$root/bench" && ls bench_cuda_attention.cpp bench_cuda_conv.cpp 2>/dev/null | sed 's/\.cpp$//')
fi

# ---- the GPU tests (JUnit XML from GoogleTest itself, so prebuilt binaries need no ctest files)
step test_gpu 240 "$bin/test_gpu" --gtest_output="xml:$report/ctest_gpu.xml"

# ---- benchmarks
if [ -x "$bin/bench_cuda_gemm" ]; then
  step bench_cuda_gemm 150 "$bin/bench_cuda_gemm" --json "$report/bench_cuda_gemm.json"
fi
have_torch=0
python3 -c 'import torch; assert torch.cuda.is_available()' > /dev/null 2>&1 && have_torch=1
if [ $have_torch = 1 ]; then
  step torch_side 120 python3 "$root/tests/gpu/torch_gemm.py" --json "$report/torch.json"
else
  printf 'torch_side\tskipped\t0\t0\n' >> "$report/steps.tsv"
fi
# attention, convolution, the ViT-B/16 forward and the EEG training epoch, each beside PyTorch
if [ -x "$bin/bench_cuda_attention" ]; then
  step bench_cuda_attention 90 "$bin/bench_cuda_attention" --json "$report/bench_cuda_attention.json"
  [ $have_torch = 1 ] && step torch_attention 90 python3 "$root/tests/gpu/torch_attention.py" \
    --json "$report/torch_attention.json"
fi
if [ -x "$bin/bench_cuda_conv" ]; then
  step bench_cuda_conv 90 "$bin/bench_cuda_conv" --json "$report/bench_cuda_conv.json"
fi
if [ -x "$bin/bench_cuda_vit" ]; then
  step bench_cuda_vit 90 "$bin/bench_cuda_vit" --batch 256 --json "$report/bench_cuda_vit.json"
  [ $have_torch = 1 ] && step torch_vit 120 python3 "$root/tests/gpu/torch_vit.py" --batch 256 \
    --json "$report/torch_vit.json"
fi
# where the bf16 attention kernels' time goes at the ViT's batch-256 shape (Nsight Compute,
# where the machine has it): throughput, occupancy, warp stalls, in profile.txt
ncu_bin=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$ncu_bin" ] && [ -x "$bin/bench_cuda_attention" ]; then
  step profile_attention 90 "$ncu_bin" --section SpeedOfLight --section Occupancy \
    --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    -k 'regex:mma_pipelined|dkdv_pipelined|dq_pipelined' \
    --log-file "$report/profile.txt" "$bin/bench_cuda_attention" --shape "vit-b16 b256" --once
else
  printf 'profile_attention\tskipped\t0\t0\n' >> "$report/steps.tsv"
fi
if [ -x "$bin/bench_eeg_epoch" ]; then  # where a step's time goes (in check.log)
  step eeg_breakdown 60 "$bin/bench_eeg_epoch" --device cuda --breakdown --epochs 1
fi
if [ -x "$bin/bench_eeg_epoch" ] && [ $have_torch = 1 ]; then
  step eeg_epoch 120 python3 "$root/bench/compare_eeg_epoch.py" --binary "$bin/bench_eeg_epoch" \
    --device cuda --epochs 5 --threads 4 --json "$report/eeg_epoch.json"
fi

# ---- compute-sanitizer: memcheck over every GPU test, racecheck over the kernels that share
# memory between threads (reductions, softmax, norms, GEMM and attention tiles, convolution,
# pooling, losses, gradient norms)
# racecheck is slow (it tracks every shared-memory access): the kernels with block reductions
# first (seconds), then the tiled ones at small sizes (minutes on an H100).
racecheck_core='GpuReduce.*:GpuSoftmax.*:GpuLayerNorm.*:*GpuMatmul*:GpuAdam.*:GpuPool.*:GpuBatchNorm.*'
racecheck_core+=':GpuCrossEntropy.*:GpuClipGradNorm.*:GpuL2Normalize.*'
# the tiled kernels in three steps (each small cases only), so that one slow step leaves the
# others' verdicts
racecheck_attention='GpuAttention.FusedBackwardIsDeterministic*:GpuAttention.FusedOperandLayouts'
racecheck_gemm='GpuGemmWgmma.BatchesAlphaBeta*:GpuGemmTiled.Bf16TensorCoreBatches*:GpuGemmTiled.F32BatchesAlphaBeta'
racecheck_conv='GpuConv.Conv1d:GpuConv.EegEncoderStack*'
if command -v compute-sanitizer > /dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  step memcheck 150 "$sanitizer" --tool memcheck --error-exitcode 3 \
    "$bin/test_gpu" --gtest_filter='-GpuAllocator.OutOfMemory*' --gtest_brief=1
  step racecheck 60 "$sanitizer" --tool racecheck --error-exitcode 3 \
    "$bin/test_gpu" --gtest_brief=1 --gtest_filter="$racecheck_core"
  for part in attention gemm conv; do
    filter_var="racecheck_$part"
    step "racecheck_$part" 120 "$sanitizer" --tool racecheck --error-exitcode 3 \
      "$bin/test_gpu" --gtest_brief=1 --gtest_filter="${!filter_var}"
  done
else
  printf 'compute_sanitizer\tskipped\t0\t0\n' >> "$report/steps.tsv"
fi

# ---- optionally, the CPU engine suite on the same build
if [ "${SHALLOW_CHECK_CPU:-0}" = 1 ]; then
  step build_test_engine 300 cmake --build "$build" -j "$jobs" --target test_engine && \
    step test_engine 300 "$build/bin/test_engine" --gtest_brief=1
fi

# ---- the report
echo "total: $(( $(date +%s) - started ))s" | tee -a "$log"
publish
echo "report written to ${dest:-$report}"
[ -f "$report/report.md" ] && cat "$report/report.md"
exit 0
