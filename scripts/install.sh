#!/bin/sh
# Installs one pinned squizzle release binary, after checking it.
#
#   curl -fsSL https://github.com/squizzle-dev/squizzle/releases/download/v0.1.0/install.sh \
#     | sh -s -- --version 0.1.0
#
# What it checks before anything is installed (docs/install.md):
#   1. the keyless Sigstore signature of the release's SHA256SUMS: signed by
#      squizzle's release workflow on that very tag (cosign or the PyPI
#      `sigstore` client verifies it, whichever is on PATH);
#   2. the binary's SHA-256 against its line in SHA256SUMS;
#   3. with --sha256, the binary's SHA-256 against the value you pinned.
# A failed check installs nothing and leaves an existing squizzle in place.
#
# Exit codes: 0 installed; 2 usage or unsupported platform; 3 download
# failed; 4 a check failed (checksum, pin or signature); 1 anything else.
set -eu

REPO_URL=https://github.com/squizzle-dev/squizzle
ISSUER_DEFAULT=https://token.actions.githubusercontent.com

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  code=$1
  shift
  printf 'install.sh: error: %s\n' "$*" >&2
  exit "$code"
}

usage() {
  cat >&2 <<'EOF'
Usage: install.sh --version VERSION [options]

  --version V          the squizzle release to install (or SQUIZZLE_INSTALL_VERSION)
  --dir DIR            where to put the binary (SQUIZZLE_INSTALL_DIR; default
                       /usr/local/bin as root, else ~/.local/bin)
  --sha256 HEX         also require this SHA-256 of the binary (SQUIZZLE_INSTALL_SHA256)
  --signature MODE     require | auto | skip (SQUIZZLE_INSTALL_SIGNATURE; default auto:
                       checked when cosign or the PyPI sigstore client is on PATH,
                       otherwise a warning says it was not)
  --target TRIPLE      x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu
                       (SQUIZZLE_INSTALL_TARGET; default: this machine's)
  --release-url URL    where the release's files are (SQUIZZLE_INSTALL_RELEASE_URL;
                       default the GitHub release page of the version; plain
                       http only for 127.0.0.1/localhost)
  --cert-identity ID   signer identity of SHA256SUMS (SQUIZZLE_INSTALL_CERT_IDENTITY;
                       default squizzle's release workflow on tag vVERSION)
  --cert-oidc-issuer U (SQUIZZLE_INSTALL_CERT_OIDC_ISSUER; default GitHub Actions')
  --trust-config FILE  a Sigstore ClientTrustConfig for a private Sigstore
                       deployment (SQUIZZLE_INSTALL_TRUST_CONFIG; default the
                       public-good instance)
EOF
}

version=${SQUIZZLE_INSTALL_VERSION:-}
dir=${SQUIZZLE_INSTALL_DIR:-}
pin=${SQUIZZLE_INSTALL_SHA256:-}
mode=${SQUIZZLE_INSTALL_SIGNATURE:-auto}
target=${SQUIZZLE_INSTALL_TARGET:-}
release_url=${SQUIZZLE_INSTALL_RELEASE_URL:-}
identity=${SQUIZZLE_INSTALL_CERT_IDENTITY:-}
issuer=${SQUIZZLE_INSTALL_CERT_OIDC_ISSUER:-$ISSUER_DEFAULT}
trust_config=${SQUIZZLE_INSTALL_TRUST_CONFIG:-}

while [ $# -gt 0 ]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --version | --dir | --sha256 | --signature | --target | --release-url | \
      --cert-identity | --cert-oidc-issuer | --trust-config)
      [ $# -ge 2 ] || die 2 "$1 needs a value (see --help)"
      case $1 in
        --version) version=$2 ;;
        --dir) dir=$2 ;;
        --sha256) pin=$2 ;;
        --signature) mode=$2 ;;
        --target) target=$2 ;;
        --release-url) release_url=$2 ;;
        --cert-identity) identity=$2 ;;
        --cert-oidc-issuer) issuer=$2 ;;
        --trust-config) trust_config=$2 ;;
      esac
      shift 2
      ;;
    *) die 2 "unknown argument '$1' (see --help)" ;;
  esac
done

# --- what to install ---------------------------------------------------------
[ -n "$version" ] || die 2 "which version? Pass --version X.Y.Z (pin one; there is no 'latest')"
case $version in
  v*) version=${version#v} ;;
esac
printf '%s' "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$' ||
  die 2 "'$version' is not a release version (expected X.Y.Z, e.g. 0.1.0)"
case $mode in
  require | auto | skip) ;;
  *) die 2 "--signature must be require, auto or skip, not '$mode'" ;;
esac
if [ -n "$pin" ]; then
  pin=$(printf '%s' "$pin" | tr 'A-F' 'a-f')
  printf '%s' "$pin" | grep -Eq '^[0-9a-f]{64}$' ||
    die 2 "--sha256 must be 64 hex digits, not '$pin'"
fi

if [ -z "$target" ]; then
  os=$(uname -s)
  [ "$os" = Linux ] || die 2 "no prebuilt squizzle for $os; build from source: cargo install --locked --path ."
  case $(uname -m) in
    x86_64 | amd64) target=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) target=aarch64-unknown-linux-gnu ;;
    *) die 2 "no prebuilt squizzle for $(uname -m); build from source: cargo install --locked --path ." ;;
  esac
fi
case $target in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
  *) die 2 "no prebuilt squizzle for target '$target' (x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu)" ;;
esac

[ -n "$release_url" ] || release_url="$REPO_URL/releases/download/v$version"
release_url=${release_url%/}
case $release_url in
  https://*) proto='=https' ;;
  http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/*) proto='=http' ;;
  *) die 2 "the release URL must be https:// (plain http only for 127.0.0.1 or localhost): $release_url" ;;
esac
[ -n "$identity" ] || identity="$REPO_URL/.github/workflows/release.yml@refs/tags/v$version"

if [ -z "$dir" ]; then
  if [ "$(id -u)" = 0 ]; then dir=/usr/local/bin; else dir="$HOME/.local/bin"; fi
fi

command -v curl >/dev/null 2>&1 || die 2 "curl is needed to download the release (apt-get install curl)"
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die 2 "sha256sum (coreutils) or shasum is needed to check the download"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

asset="squizzle-$target"
fetch() {
  say "downloading $release_url/$1"
  curl --proto "$proto" --fail --silent --show-error --location --retry 3 \
    --output "$tmp/$1" "$release_url/$1" ||
    die 3 "could not download $release_url/$1 (does release v$version exist, with a binary for $target?)"
}

say "installing squizzle $version ($target) into $dir"
fetch SHA256SUMS
fetch "$asset"

# --- 1. the signature of SHA256SUMS --------------------------------------------
verify_with=
if [ "$mode" != skip ]; then
  if command -v cosign >/dev/null 2>&1 && [ -z "$trust_config" ]; then
    verify_with=cosign
  elif python3 -c 'import sigstore' >/dev/null 2>&1; then
    verify_with=sigstore
  elif [ "$mode" = require ]; then
    die 4 "the signature must be checked (--signature require) but neither cosign nor the PyPI sigstore client (python3 -m sigstore) is installed: install one (pip install sigstore), or pin the binary with --sha256"
  fi
fi
if [ -n "$verify_with" ]; then
  fetch SHA256SUMS.sigstore.json
  say "checking the Sigstore signature of SHA256SUMS ($verify_with): signer $identity, issuer $issuer"
  if [ "$verify_with" = cosign ]; then
    cosign verify-blob --bundle "$tmp/SHA256SUMS.sigstore.json" \
      --certificate-identity "$identity" --certificate-oidc-issuer "$issuer" \
      "$tmp/SHA256SUMS" >"$tmp/verify.log" 2>&1 || {
      cat "$tmp/verify.log" >&2
      die 4 "the signature of SHA256SUMS does not verify for signer $identity: nothing installed"
    }
  else
    set -- python3 -m sigstore
    [ -z "$trust_config" ] || set -- "$@" --trust-config "$trust_config"
    "$@" verify identity --bundle "$tmp/SHA256SUMS.sigstore.json" \
      --cert-identity "$identity" --cert-oidc-issuer "$issuer" \
      "$tmp/SHA256SUMS" >"$tmp/verify.log" 2>&1 || {
      cat "$tmp/verify.log" >&2
      die 4 "the signature of SHA256SUMS does not verify for signer $identity: nothing installed"
    }
  fi
  say "signature OK"
elif [ "$mode" = skip ]; then
  say "warning: signature NOT checked (--signature skip)"
else
  say "warning: signature NOT checked: neither cosign nor the PyPI sigstore client is installed (pip install sigstore, or pin the binary with --sha256; --signature require makes this an error)"
fi

# --- 2. the binary against SHA256SUMS; 3. against the pin -----------------------
# Exactly one line must name the binary ("<hex>  <name>" or "<hex> *<name>").
expected=$(awk -v f="$asset" '($2 == f || $2 == "*" f) { print $1; n++ } END { if (n != 1) exit 1 }' "$tmp/SHA256SUMS") ||
  die 4 "SHA256SUMS must list $asset exactly once; it does not: nothing installed"
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
actual=$(sha256 "$tmp/$asset")
if [ "$actual" != "$expected" ]; then
  die 4 "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual: nothing installed"
fi
say "checksum OK ($actual)"
if [ -n "$pin" ] && [ "$actual" != "$pin" ]; then
  die 4 "$asset is $actual, not the pinned --sha256 $pin: nothing installed"
fi

# --- install: next to the old binary, then one rename ----------------------------
mkdir -p "$dir" || die 1 "cannot create $dir"
chmod 0755 "$tmp/$asset"
"$tmp/$asset" version >/dev/null 2>&1 ||
  die 1 "the downloaded binary does not run on this machine (wrong target, or a missing system library)"
cp "$tmp/$asset" "$dir/.squizzle.install.$$" || die 1 "cannot write into $dir (run as root, or pass --dir)"
chmod 0755 "$dir/.squizzle.install.$$"
mv -f "$dir/.squizzle.install.$$" "$dir/squizzle" || {
  rm -f "$dir/.squizzle.install.$$"
  die 1 "cannot install $dir/squizzle"
}
say "installed $dir/squizzle: $("$dir/squizzle" version 2>/dev/null | head -n 1)"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) say "note: $dir is not on PATH" ;;
esac
