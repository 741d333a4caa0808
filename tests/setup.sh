#!/usr/bin/env bash
# Installs what `npm run dev` and `npm test` need, skipping whatever is
# already installed at the right version: the wasm32 target, rustfmt and
# clippy, worker-build, wasm-bindgen-cli and postrust-server at pinned versions, the npm
# packages (wrangler, esbuild, PGlite, Swagger UI, ReDoc, playwright-core),
# the anthropic Python SDK and schemathesis venvs, the documentation's
# static files, and Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the wasm-bindgen pinned in Cargo.toml exactly.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)

say() { printf 'setup: %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required: $2" >&2; exit 1; }
}
need cargo "install Rust with rustup (https://rustup.rs)"
need rustup "install Rust with rustup (https://rustup.rs)"
need node "install Node.js 20.3 or newer"
need npm "install npm (it comes with Node.js)"

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20.3 or newer is required (found $(node --version))" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding $component"
    rustup component add "$component"
  fi
done

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ "$("$CARGO_BIN/worker-build" --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (takes several minutes once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi
if [ "$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# postrust-server: a PostgREST-compatible server the end-to-end tests put
# behind a small gateway to run the worker over Supabase's HTTP API.
# Pinned exactly and kept in a versioned folder outside the clone (the
# version must match POSTRUST_VERSION in tests/harness/src/supabase.rs).
# Not --locked: its lockfile names a webpki-roots release some registry
# mirrors do not serve.
POSTRUST_VERSION=3.1.0
postrust_root="$HOME/.cache/conversation-api/postrust-server-$POSTRUST_VERSION"
if [ ! -x "$postrust_root/bin/postrust" ]; then
  say "installing postrust-server $POSTRUST_VERSION into $postrust_root (takes about 10 minutes once)"
  cargo install postrust-server --version "=$POSTRUST_VERSION" --root "$postrust_root" --force
fi

# swagger-ui-dist depends on @scarf/scarf, whose install script reports
# installs unless this is set.
export SCARF_ANALYTICS=false
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.setup-stamp
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
fi

# The official Anthropic Python SDK, in a throwaway venv the end-to-end
# tests feed captured streams to (pinned in tests/sdk/requirements.txt).
ANTHROPIC_SDK_VERSION=$(sed -n 's/^anthropic==\([0-9.]*\)$/\1/p' tests/sdk/requirements.txt)
sdk_venv="$HOME/.cache/conversation-api/venv-anthropic-$ANTHROPIC_SDK_VERSION"
if [ "$("$sdk_venv/bin/python" -c 'import anthropic; print(anthropic.__version__)' 2>/dev/null || true)" != "$ANTHROPIC_SDK_VERSION" ]; then
  need python3 "install Python 3.9 or newer with its venv module"
  say "installing the anthropic SDK $ANTHROPIC_SDK_VERSION in $sdk_venv"
  rm -rf "$sdk_venv"
  python3 -m venv "$sdk_venv"
  "$sdk_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
fi

# Schemathesis, which `npm test` runs against the worker's /openapi.json,
# in its own venv (pinned in tests/schemathesis/requirements.txt).
SCHEMATHESIS_VERSION=$(sed -n 's/^schemathesis==\([0-9.]*\)$/\1/p' tests/schemathesis/requirements.txt)
st_venv="$HOME/.cache/conversation-api/venv-schemathesis-$SCHEMATHESIS_VERSION"
if [ "$("$st_venv/bin/st" --version 2>/dev/null || true)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  need python3 "install Python 3.9 or newer with its venv module"
  say "installing schemathesis $SCHEMATHESIS_VERSION in $st_venv"
  rm -rf "$st_venv"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
fi

# The /docs and /redoc static files (build/assets/docs); `npm run
# build:worker` (wrangler's build command) writes them again.
node tests/build/docs-assets.mjs

# Headless Chromium for the browser test of /docs and /redoc.
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (Debian package) for the browser test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
      || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
  else
    say "WARNING: no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} and cannot install it here (needs root and apt-get):"
    say "         the browser test of /docs and /redoc will be SKIPPED. Install the package 'chromium' or set CHROMIUM_PATH."
  fi
fi
