#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine with Python 3.11, as root:
#   1. installs the Debian packages the tests use (redis-server, debootstrap, chromium, npm,
#      prometheus: a real Prometheus server scrapes a worker in tests/observability),
#   2. creates .venv and installs repid with every extra and the test tools (the `test`
#      dependency group of pyproject.toml; test tools are not published as an extra),
#   3. fetches the pinned AsyncAPI React bundle and JSON Schemas (npm pack, sha512-checked),
#      and installs the published repid 2.1.4 into .bench/baseline-venv (tests/compat runs it
#      beside ours as a peer process; nothing of it is imported by this package),
#   4. starts Redis, RabbitMQ 4 (in a Debian 13 chroot) and the Pub/Sub emulator on loopback,
#   5. runs ruff, mypy --strict and pytest (broker tests fail instead of skipping; tests/docs
#      builds the documentation site with mkdocs --strict and runs every example in docs/),
#      then the cluster tests in a step of their own (`pytest --clusters -m cluster`: a Redis
#      Cluster of 3 masters + 3 replicas, a Sentinel group and a 3-node RabbitMQ cluster, each
#      started on loopback when its first test needs it and stopped at the end; the contract
#      suite on each, failovers counted end to end), then the in-memory tests on Python 3.10,
#      3.12 and 3.13 (pyenv's; one .venv-pyX.Y each),
#   6. stops the brokers and clusters, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
step() { printf '\n=== %s\n' "$*"; }

step "Debian packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
command -v prometheus >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "Python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v WARNING || true
.venv/bin/python -m pip install -q -e '.[all]' --group test 2>&1 | grep -v WARNING || true

step "Docs tools (the docs dependency group)"
.venv/bin/python -m pip install -q --group docs 2>&1 | grep -v WARNING || true

step "AsyncAPI assets"
.venv/bin/python scripts/fetch_asyncapi_assets.py --specs

step "repid 2.1.4 (the peer of the compatibility tests, in its own virtual environment)"
bash benchmarks/baseline.sh
export REPID_COMPAT_PYTHON="$PWD/.bench/baseline-venv/bin/python"

step "Brokers"
trap 'step "Stopping brokers"; bash scripts/brokers.sh stop all || true' EXIT
bash scripts/brokers.sh start all
# shellcheck disable=SC1091
source .brokers/env
export REPID_REQUIRE_BROKERS=1

step "ruff"
.venv/bin/ruff check repid tests benchmarks examples scripts setup.py
.venv/bin/ruff format --check repid tests benchmarks examples scripts setup.py

step "mypy --strict"
.venv/bin/mypy

step "pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

step "pytest: broker clusters (Redis Cluster, Sentinel, RabbitMQ cluster)"
# The same selection, cluster tests only (the step above skipped them); none selected is fine.
rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider --clusters -m cluster "$@" || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 5 ] || exit $rc

# The in-memory part of the suite on the other Python versions the package claims (found under
# pyenv; Debian ships only 3.11). Skipped when the command was given pytest arguments.
MEMORY_TESTS=(tests/core tests/review tests/health tests/cli/test_cli_unit.py tests/sync)
if [ $# -eq 0 ]; then
    for version in 3.10 3.12 3.13; do
        step "In-memory tests on Python $version"
        # pyenv's own build first (its shims answer for versions that are not selected).
        interpreter=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python 2>/dev/null |
            sort -V | tail -1 || true)
        [ -n "$interpreter" ] || interpreter=$(command -v "python$version" || true)
        if [ -z "$interpreter" ] || ! "$interpreter" -c pass 2>/dev/null; then
            echo "Python $version is not installed here: skipped"
            continue
        fi
        venv=".venv-py$version"
        [ -x "$venv/bin/python" ] || "$interpreter" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v WARNING || true
        "$venv/bin/python" -m pip install -q -e '.[pydantic,yaml]' --group test-core 2>&1 |
            grep -v WARNING || true
        "$venv/bin/python" -m pytest -q -p no:cacheprovider "${MEMORY_TESTS[@]}" \
            -m "not redis and not amqp and not pubsub and not slow"
    done
fi
