// Copies the API documentation's static files into build/assets/docs/,
// the OpenAPI document to build/assets/openapi.json, and writes
// build/assets/_headers: Swagger UI and ReDoc come from the pinned npm
// packages (no CDN), the Swagger UI initializer from src/docs/assets/, the
// document from src/docs/openapi.json (the worker reads it through the
// ASSETS binding and serves it only if it is the one it was built with).
// Only build/assets/docs/, openapi.json and _headers are rewritten; other
// producers' sub-folders of build/assets are left alone. Run by
// tests/setup.sh and by `npm run build:worker`, before wrangler starts.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const assets = join(root, "build/assets");
const out = join(assets, "docs");
const modules = join(root, "node_modules");

/** [source, destination under build/assets/docs] */
const files = [
  ["swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"],
  ["swagger-ui-dist/swagger-ui.css", "swagger-ui/swagger-ui.css"],
  ["swagger-ui-dist/favicon-32x32.png", "swagger-ui/favicon-32x32.png"],
  ["swagger-ui-dist/LICENSE", "swagger-ui/LICENSE"],
  ["swagger-ui-dist/NOTICE", "swagger-ui/NOTICE"],
  ["redoc/bundles/redoc.standalone.js", "redoc/redoc.standalone.js"],
  ["redoc/bundles/redoc.standalone.js.LICENSE.txt", "redoc/redoc.standalone.js.LICENSE.txt"],
  ["redoc/LICENSE", "redoc/LICENSE"],
];

/**
 * Edits of the pinned bundles, each applied exactly once (the build fails
 * when a new version no longer has the text): ReDoc's sidebar footer loads
 * its logo from a CDN; it becomes an empty inline image.
 */
const patches = {
  "redoc/redoc.standalone.js": [
    [
      'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"',
      "src:\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E\"",
    ],
  ],
};

/** Headers on every static file (the worker's own responses get theirs from the worker). */
const headers = `/*
  X-Content-Type-Options: nosniff
  X-Frame-Options: DENY
  Referrer-Policy: no-referrer
  Strict-Transport-Security: max-age=63072000; includeSubDomains
  Cross-Origin-Resource-Policy: same-origin
  Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
`;

/**
 * Copies one file, applying its `patches` and removing a script's or style
 * sheet's source-map comment (the maps are not served).
 */
function copy(from, to, edits = []) {
  mkdirSync(dirname(to), { recursive: true });
  if (!/\.(js|css)$/.test(to)) {
    copyFileSync(from, to);
    return;
  }
  let text = readFileSync(from, "utf8")
    .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n")
    .replace(/\n\/\*# sourceMappingURL=\S+\s*\*\/\s*$/, "\n");
  for (const [find, replace] of edits) {
    const count = text.split(find).length - 1;
    if (count !== 1) {
      throw new Error(`${from}: expected "${find}" once, found it ${count} times`);
    }
    text = text.replace(find, () => replace);
  }
  writeFileSync(to, text);
}

rmSync(out, { recursive: true, force: true });
for (const [from, to] of files) {
  copy(join(modules, from), join(out, to), patches[to]);
}
copy(join(root, "src/docs/assets/swagger-init.js"), join(out, "swagger-init.js"));
copyFileSync(join(root, "src/docs/openapi.json"), join(assets, "openapi.json"));
writeFileSync(join(assets, "_headers"), headers);
