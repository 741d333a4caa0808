// The floor of a streamed relay under wrangler dev (BENCHMARKS.md, "Stream
// throughput"): a 1,000-chunk answer read directly from the provider
// stand-in and through each mode of floor.mjs (`/pipe`, `/perchunk`,
// `/readonly`, `/tick`); 15 runs each after a warm-up, alternating. With the stand-in and floor.mjs running:
//   target/debug/provider-standin --port 0        (prints its URL)
//   node tests/harness/worker.mjs --port 18931 --config tests/bench/stream-floor/wrangler.toml
//   node tests/bench/stream-floor/client.mjs http://127.0.0.1:STANDIN http://127.0.0.1:18931
// (node_modules/.bin first on PATH, for Node 22 and wrangler).
const [standin, worker] = process.argv.slice(2);
const WORDS = 1000, RUNS = 15;
const chunks = Array.from({ length: WORDS }, (_, i) => `w${i} `);
async function script(marker) {
  const r = await fetch(`${standin}/_control/scripts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ contains: marker, times: 1, reply: { chunks } }) });
  if (r.status !== 201) throw new Error(`script ${r.status}`);
}
const groq = `${standin}/groq/openai/v1/chat/completions`;
async function timed(url, init) {
  const t = performance.now();
  const r = await fetch(url, init);
  const reader = r.body.getReader();
  let n = 0, text = "";
  const dec = new TextDecoder();
  for (;;) { const { done, value } = await reader.read(); if (done) break; text += dec.decode(value, { stream: true }); }
  n = text.split('"content":"w').length - 1;
  if (n !== WORDS) throw new Error(`got ${n} chunks from ${url}`);
  return performance.now() - t;
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const MODES = ["direct", "pipe", "perchunk", "readonly", "tick"];
const res = Object.fromEntries(MODES.map((m) => [m, []]));
for (let i = 0; i <= RUNS; i++) {
  for (const mode of MODES) {
    const marker = `floor-${mode}-${i}-${process.pid}`;
    await script(marker);
    const t = mode === "direct"
      ? await timed(groq, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer bench" }, body: JSON.stringify({ model: "openai/gpt-oss-20b", stream: true, messages: [{ role: "user", content: marker }] }) })
      : await timed(`${worker}/${mode}?upstream=${encodeURIComponent(groq)}&marker=${marker}`, {});
    if (i > 0) res[mode].push(t);
  }
}
const d = med(res.direct);
for (const [k, v] of Object.entries(res)) console.log(`${k}: median ${med(v).toFixed(1)} ms (min ${Math.min(...v).toFixed(1)}), ${(med(v) / d).toFixed(1)}x direct, per chunk ${((med(v) - d) / WORDS * 1000).toFixed(0)} us`);
