#!/usr/bin/env bash
# Builds PureJaxRL's PPO as a side-by-side peer for benchmarks/jit_engine.py, outside this repo:
#   $A2C_ANCHORS/purejaxrl (default /tmp/a2c-anchors/purejaxrl): a venv and PureJaxRL's own
#   purejaxrl/ppo.py and purejaxrl/wrappers.py at a pinned commit, unmodified.
# Usage: bash benchmarks/peers/setup_purejaxrl.sh [DIR_WITH_ppo.py_AND_wrappers.py]
# Without an argument the two files come from a git clone of luchris429/purejaxrl.
set -euo pipefail
commit=146b4856d593bcb4114b9c9fdb45798034696551
root=${A2C_ANCHORS:-/tmp/a2c-anchors}/purejaxrl
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -f $root/.ready ]]; then
  python3 -m venv "$root"
  "$root/bin/pip" install -q --upgrade pip
  # jax 0.10.2, flax 0.12.8, optax 0.2.8, distrax 0.1.9 when measured (2026-11)
  "$root/bin/pip" install -q jax jaxlib flax optax distrax "gymnax==1.0.1" "gymnasium<1.4" six numpy
  touch "$root/.ready"
fi
mkdir -p "$root/src/purejaxrl"
if [[ $# -ge 1 ]]; then
  cp "$1/ppo.py" "$1/wrappers.py" "$root/src/purejaxrl/"
elif [[ ! -f $root/src/purejaxrl/ppo.py ]]; then
  tmp=$(mktemp -d)
  git clone -q https://github.com/luchris429/purejaxrl "$tmp/purejaxrl"
  git -C "$tmp/purejaxrl" checkout -q "$commit"
  cp "$tmp/purejaxrl/purejaxrl/ppo.py" "$tmp/purejaxrl/purejaxrl/wrappers.py" "$root/src/purejaxrl/"
  rm -rf "$tmp"
fi
touch "$root/src/purejaxrl/__init__.py"
cp "$here/purejaxrl_run.py" "$root/run.py"
echo "PureJaxRL peer ready: $root/bin/python $root/run.py --seed 0"
