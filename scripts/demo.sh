#!/usr/bin/env bash
# Builds the `shallow` CLI and runs its demo on the built-in simulated data set.
#   sudo bash scripts/demo.sh [--quick]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
BUILD_DIR="$root/build" bash "$root/scripts/build.sh" -DSHALLOW_TESTS=OFF -DSHALLOW_BENCH=OFF
"$root/build/bin/shallow" demo "$@"
