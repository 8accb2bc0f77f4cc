#!/usr/bin/env bash
# Create (or refresh) one virtual environment per peer task queue under .bench/peers/NAME
# (git-ignored), each with pinned versions from PyPI. Idempotent: a venv whose pins already
# match is left alone. The versions are the peers' latest releases when this file was written;
# bump them here and the benchmark's JSON/markdown record what ran.
#
#   bash benchmarks/peers/install.sh              # every peer
#   bash benchmarks/peers/install.sh arq celery   # some
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="${PEERS_DIR:-$ROOT/.bench/peers}"
PY="${PEERS_PYTHON:-python3}"

declare -A SPECS=(
  [taskiq]="taskiq==0.13.0 taskiq-redis==1.2.4 taskiq-aio-pika==0.6.1"
  [faststream]="faststream[redis,rabbit]==0.7.8"
  [dramatiq]="dramatiq[redis,rabbitmq]==2.2.1"
  [arq]="arq==0.28.0"
  [celery]="celery[redis]==5.7.0"
  # saq imports typing_extensions without declaring it (0.26.4)
  [saq]="saq[redis]==0.26.4 typing_extensions==4.15.0"
)
# repid 2.1.4 has its own venv (benchmarks/baseline.sh); the peer runner uses it too.

peers=("$@")
[[ ${#peers[@]} -gt 0 ]] || peers=(taskiq faststream dramatiq arq celery saq)

for peer in "${peers[@]}"; do
  spec="${SPECS[$peer]:-}"
  [[ -n "$spec" ]] || { echo "unknown peer: $peer" >&2; exit 2; }
  venv="$BASE/$peer"
  stamp="$venv/.pins"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    echo "$peer: ready ($spec)"
    continue
  fi
  mkdir -p "$BASE"
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086
  "$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check $spec
  echo "$spec" > "$stamp"
  echo "$peer: installed ($spec)"
done
