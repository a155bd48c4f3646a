#!/usr/bin/env bash
# Runs Charla's whole test suite, installing what it needs first (idempotent):
#   1. Rust unit and integration tests (the real server on 127.0.0.1:0, the
#      load generator's smoke run);
#   2. the release binary, run as the container runs it (tests/deploy, pytest),
#      alone and as several nodes on a Redis of the tests' own (Debian's
#      redis-server), and the Dockerfile lint (hadolint);
#   3. the browser tests in Debian's Chromium (tests/browser, node --test).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "Rust tests"
cargo test --workspace --locked --quiet

step "Release build"
cargo build --release --locked --quiet -p charla-server

step "Deployment tests (Python)"
# The Redis engine's tests (tests/deploy/test_cluster.py, and
# tests/browser/cluster.test.mjs below) start redis-servers of their own.
if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is missing: install Debian's redis-server package (apt-get install redis-server)" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest -q tests/deploy

step "Browser tests (Chromium)"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "Chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2
        exit 1
    fi
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund
# One file at a time: each starts its own server and Chromium (2 cores).
node --test --test-concurrency=1 tests/browser/
