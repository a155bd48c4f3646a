#!/usr/bin/env bash
# Runs Charla's whole test suite: unit and integration tests against the real
# server.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace --quiet
