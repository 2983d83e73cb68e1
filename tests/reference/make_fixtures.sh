#!/usr/bin/env bash
# Regenerates every committed fixture under tests/fixtures from PyTorch and friends.
#   pip install torch numpy safetensors && bash tests/reference/make_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")"
for script in ops_*.py $(ls *.py | grep -v -e '^ops_' -e '^common.py$'); do
  [ -f "$script" ] || continue
  echo "== $script"
  python3 "$script"
done
