// /docs (Swagger UI) and /redoc (ReDoc) in headless Chromium against the
// worker under wrangler dev. Run by the end-to-end test `docs_pages::` with
// DOCS_BASE_URL (the worker), DOCS_ACCESS_TOKEN and DOCS_API_KEY (a
// registered user's access token and API key), CHROMIUM_PATH and
// SCREENSHOT_DIR.
//
// Each page must render every operation of /openapi.json, send no request
// off the worker's origin, and log no error and no CSP violation. On
// /docs, "Authorize" with the access token and "Try it out" of
// GET /api/v1/models and GET /api/v1/auth/me must show a 200, and so must
// /auth/me again once authorized with the API key instead.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.DOCS_BASE_URL;
const token = process.env.DOCS_ACCESS_TOKEN;
const apiKey = process.env.DOCS_API_KEY;
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const shots = process.env.SCREENSHOT_DIR || tmpdir();
const TIMEOUT = 90_000;
assert.ok(base, "DOCS_BASE_URL is set");
assert.ok(token, "DOCS_ACCESS_TOKEN is set");
assert.ok(apiKey, "DOCS_API_KEY is set");
const origin = new URL(base).origin;

let context;
let profile;
let operations;
/** The names of the document's bearer and API-key security schemes. */
let schemes;

before(async () => {
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  operations = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      operations.push({ method: method.toUpperCase(), path, id: op.operationId, summary: op.summary });
    }
  }
  assert.ok(operations.length > 0, "the document has operations");
  const named = Object.entries(doc.components?.securitySchemes ?? {});
  const find = (want) => named.find(([, scheme]) => want(scheme))?.[0];
  schemes = {
    bearer: find((s) => s.type === "http" && s.scheme?.toLowerCase() === "bearer"),
    apiKey: find((s) => s.type === "apiKey" && s.in === "header"),
  };
  assert.ok(schemes.bearer && schemes.apiKey, "the document has both security schemes");
  profile = mkdtempSync(join(tmpdir(), "docs-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  // Reports CSP violations of the page to the test (injected by the
  // browser itself, so the page's own policy does not apply to it).
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/**
 * Opens `path` in a new page that records every request (those off the
 * worker's origin are also blocked), console errors and page errors.
 */
async function open(path) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const seen = { requests: [], foreign: [], errors: [] };
  await page.route("**/*", (route) => {
    // Recorded by the "request" listener below; never let it out.
    if (new URL(route.request().url()).origin === origin) return route.continue();
    return route.abort();
  });
  page.on("request", (r) => {
    const url = r.url();
    seen.requests.push(url);
    // data: and blob: URLs are made inside the page and never reach the network.
    if (!/^(data|blob):/.test(url) && new URL(url).origin !== origin) seen.foreign.push(url);
  });
  page.on("console", (msg) => {
    const text = msg.text();
    if (msg.type() === "error" || /content security policy/i.test(text)) {
      seen.errors.push(`console.${msg.type()}: ${text}`);
    }
  });
  page.on("pageerror", (e) => seen.errors.push(`pageerror: ${e.message}`));
  const resp = await page.goto(`${base}${path}`, { waitUntil: "load" });
  assert.equal(resp.status(), 200, `${path} answers 200`);
  const csp = resp.headers()["content-security-policy"] ?? "";
  assert.match(csp, /default-src 'none'/, `${path} has a CSP`);
  assert.doesNotMatch(csp, /unsafe-eval/, `${path}: no unsafe-eval`);
  return { page, seen };
}

/** The checks every page ends with: nothing foreign, no error, no violation. */
async function assertClean(page, seen, name) {
  await page.waitForLoadState("networkidle");
  const violations = await page.evaluate(() => window.__violations);
  assert.deepEqual(violations, [], `${name}: CSP violations`);
  assert.deepEqual(seen.foreign, [], `${name}: requests off ${origin}`);
  assert.deepEqual(seen.errors, [], `${name}: console errors`);
  assert.ok(seen.requests.some((u) => u === `${origin}/openapi.json`), `${name} loaded /openapi.json`);
  await page.close();
}

/** Expands an operation, "Try it out", "Execute"; returns the status shown. */
async function tryItOut(page, block) {
  await block.locator(".opblock-summary-control").click();
  await block.locator("button.try-out__btn").click();
  await block.locator("button.execute").click();
  const status = block.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  return (await status.innerText()).trim();
}

/** The "Authorize" dialog's section for the security scheme `name`. */
function schemeBox(page, name) {
  return page.locator(".auth-container", { has: page.locator("h4 code").getByText(name, { exact: true }) });
}

/**
 * In the "Authorize" dialog, clears `drop` (if given), enters `value` for
 * the scheme `scheme`, and closes the dialog.
 */
async function authorize(page, scheme, value, drop) {
  await page.locator(".auth-wrapper button.authorize").click();
  if (drop) {
    const old = schemeBox(page, drop);
    await old.getByRole("button", { name: "Remove authorization" }).click();
  }
  const box = schemeBox(page, scheme);
  await box.locator("input").fill(value);
  await box.locator("button.authorize").click();
  await box.getByRole("button", { name: "Remove authorization" }).waitFor();
  await page.locator(".modal-ux button.close-modal").click();
  await page.locator(".modal-ux").waitFor({ state: "detached" });
}

test("Swagger UI renders every operation, authorizes and tries GET /models and /auth/me", async () => {
  const { page, seen } = await open("/docs");
  await page.locator(".opblock").first().waitFor();
  const shown = await page.$$eval(".opblock", (blocks) =>
    blocks.map((b) => ({
      method: b.querySelector(".opblock-summary-method")?.textContent.trim(),
      path: b.querySelector(".opblock-summary-path")?.getAttribute("data-path"),
      summary: b.querySelector(".opblock-summary-description")?.textContent.trim(),
    })),
  );
  for (const op of operations) {
    assert.ok(
      shown.some((s) => s.method === op.method && s.path === op.path && s.summary === op.summary),
      `/docs shows ${op.method} ${op.path} "${op.summary}"`,
    );
  }
  assert.equal(shown.length, operations.length, "no operation twice");
  assert.match(await page.locator("body").innerText(), /text\/event-stream/, "the stream note");
  await page.screenshot({ path: join(shots, "docs-swagger-ui.png") });

  await authorize(page, schemes.bearer, token);

  const sent = [];
  page.on("request", (r) => {
    const headers = r.headers();
    sent.push({ url: r.url(), auth: headers["authorization"], key: headers["x-api-key"] });
  });
  const models = page.locator(".opblock", { has: page.locator('[data-path="/api/v1/models"]') });
  assert.equal(await tryItOut(page, models), "200", "GET /api/v1/models shows 200");
  const me = page.locator(".opblock", { has: page.locator('[data-path="/api/v1/auth/me"]') });
  assert.equal(await tryItOut(page, me), "200", "GET /api/v1/auth/me shows 200");
  const meCall = sent.find((s) => s.url === `${origin}/api/v1/auth/me`);
  assert.equal(meCall?.auth, `Bearer ${token}`, "the authorized token was sent");

  // The same call with the API key instead of the token.
  await authorize(page, schemes.apiKey, apiKey, schemes.bearer);
  sent.length = 0;
  await me.locator("button.btn-clear").click();
  await me.locator("button.execute").click();
  const status = me.locator(".live-responses-table .response .response-col_status").first();
  assert.equal((await status.innerText()).trim(), "200", "GET /api/v1/auth/me with the API key");
  const keyCall = sent.find((s) => s.url === `${origin}/api/v1/auth/me`);
  assert.equal(keyCall?.key, apiKey, "the API key was sent");
  assert.equal(keyCall?.auth, undefined, "the token was removed");
  await page.screenshot({ path: join(shots, "docs-swagger-ui-try.png"), fullPage: true });
  await assertClean(page, seen, "swagger-ui");
});

test("ReDoc renders every operation", async () => {
  const { page, seen } = await open("/redoc");
  await page.locator("[data-section-id]").first().waitFor();
  const ids = await page.$$eval("[data-section-id]", (els) => els.map((e) => e.getAttribute("data-section-id")));
  const text = await page.locator("body").innerText();
  for (const op of operations) {
    assert.ok(
      ids.some((id) => id.endsWith(`operation/${op.id}`)),
      `/redoc has a section for ${op.id}`,
    );
    assert.ok(text.includes(op.summary), `/redoc shows "${op.summary}"`);
  }
  assert.match(text, /text\/event-stream/, "the stream note");
  await page.screenshot({ path: join(shots, "docs-redoc.png") });
  await assertClean(page, seen, "redoc");
});
