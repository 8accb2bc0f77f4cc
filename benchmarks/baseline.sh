#!/usr/bin/env bash
# Create (or refresh) the virtual environment that holds the published repid==2.1.4,
# used ONLY as a benchmark baseline by benchmarks/run.py.  Idempotent: a venv that already
# has the right version is left alone.
#
#   bash benchmarks/baseline.sh            # creates .bench/baseline-venv
#   BASELINE_PYTHON=python3.11 BASELINE_VENV=/tmp/venv bash benchmarks/baseline.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BASELINE_VENV:-$ROOT/.bench/baseline-venv}"
VERSION="2.1.4"
# The published package declares the extras `redis`, `amqp` and `pydantic` (checked in its
# wheel metadata); `amqp` has no dependencies of its own but is named for completeness.
SPEC="repid[redis,amqp,pubsub,pydantic]==$VERSION"
PY="${BASELINE_PYTHON:-python3}"
# -I (isolated mode) everywhere: no current directory and no PYTHONPATH on sys.path, so the
# checkout's own `repid` (or a repid.egg-info left in the repository root) is never mistaken for
# the baseline by the version check or by pip.

if [[ -x "$VENV/bin/python" ]] \
    && "$VENV/bin/python" -I -c "import importlib.metadata as m, sys; sys.exit(m.version('repid') != '$VERSION')" 2>/dev/null \
    && "$VENV/bin/python" -I -c "import pydantic, redis, grpc, requests" 2>/dev/null; then
    echo "baseline venv ready: $VENV (repid $VERSION)"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check --upgrade pip
# requests: the published PubsubServer imports google-auth's requests transport.
"$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check "$SPEC" pydantic requests
"$VENV/bin/python" -I -c "import importlib.metadata as m; print('baseline venv ready:', '$VENV', '(repid', m.version('repid') + ')')"
