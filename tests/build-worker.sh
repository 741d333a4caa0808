#!/usr/bin/env bash
# Builds the worker (`npm run build:worker`, also wrangler's [build] command):
# - the tokeniser tables into build/assets/tokenizers/ (from tiktoken-rs's
#   data, offline);
# - the Swagger UI and ReDoc files into build/assets/docs/ (tests/build/docs-assets.mjs);
# - the script with worker-build, using only locally installed tools:
#   wasm-bindgen from ~/.cargo/bin, esbuild and wasm-opt (npm binaryen, run
#   with -Oz, see Cargo.toml) from node_modules. worker-build falls back to
#   downloading a tool it cannot find; this script refuses instead;
# - then drops the wasm name section (function names, ~0.5 MB), which
#   worker-build keeps (a cargo `strip` would also drop the target features
#   wasm-bindgen reads).
# The script is not rebuilt when its inputs are unchanged since the last
# build (wrangler runs this on every start).
set -euo pipefail
cd "$(dirname "$0")/.."

export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
for tool in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  if [ ! -x "$tool" ]; then
    echo "build-worker: $tool is missing: run 'bash tests/setup.sh'" >&2
    exit 1
  fi
done

cargo run --quiet -p harness --bin tokenizer-tables -- build/assets/tokenizers
node tests/build/docs-assets.mjs

stamp=build/.worker-inputs
inputs=$( { find src -type f -print0 | sort -z | xargs -0 sha256sum
            sha256sum Cargo.toml Cargo.lock package-lock.json "$0"
            "$WASM_BINDGEN_BIN" --version; } | sha256sum | cut -d' ' -f1)
if [ -f build/worker/shim.mjs ] && [ -f build/index_bg.wasm ] \
   && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "build-worker: script unchanged since the last build"
  exit 0
fi
rm -f "$stamp"
worker-build --release
node - build/index_bg.wasm <<'JS'
// Rewrites a wasm file without its "name" custom section.
const fs = require("fs");
const file = process.argv[2];
const bytes = fs.readFileSync(file);
const kept = [bytes.subarray(0, 8)];
let at = 8;
const leb = () => {
  let value = 0, shift = 0, byte;
  do { byte = bytes[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
  return value;
};
while (at < bytes.length) {
  const start = at;
  const id = bytes[at++];
  const size = leb();
  const end = at + size;
  let name = "";
  if (id === 0) {
    const length = leb();
    name = bytes.subarray(at, at + length).toString();
  }
  if (name !== "name") kept.push(bytes.subarray(start, end));
  at = end;
}
fs.writeFileSync(file, Buffer.concat(kept));
JS
echo "$inputs" > "$stamp"
