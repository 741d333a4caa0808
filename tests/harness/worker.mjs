// Runs the worker locally for `npm run dev`, the tests and the benchmarks:
// wrangler's programmatic dev server (`unstable_startWorker`) with the
// project's wrangler.toml (its [build] command included), without the
// DevTools inspector unless WORKER_INSPECTOR=1 asks for it.
//
// The `wrangler dev` command has no switch to turn the inspector off, and
// its inspector proxy sends one HTTP request to this Node process for every
// runtime message: one per chunk of every upstream response. That costs
// ~0.4 ms per streamed chunk and, under load, exhausts workerd's sockets.
//
// Usage: node worker.mjs --port N [--env-file PATH] [--persist-to DIR] [--env NAME]
// (`--env http` runs wrangler.toml's [env.http]: the worker without the
// Hyperdrive binding, reaching Supabase over HTTP.)
// Prints `worker ready on http://127.0.0.1:N` once requests are served.
// SIGINT/SIGTERM stop the runtime (workerd) before exiting; the launcher is
// meant to run as a process group leader so that its caller can also stop
// the whole tree with one group signal.
import { parseArgs } from "node:util";
import { unstable_startWorker } from "wrangler";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    "env-file": { type: "string" },
    "persist-to": { type: "string" },
    config: { type: "string", default: "wrangler.toml" },
    env: { type: "string" },
  },
});
if (!args.port || !/^\d+$/.test(args.port)) {
  console.error("worker.mjs: --port N is required");
  process.exit(2);
}

const inspector =
  process.env.WORKER_INSPECTOR === "1"
    ? { hostname: "127.0.0.1", port: Number(process.env.WORKER_INSPECTOR_PORT ?? 9229) }
    : false;

let worker;
let stopping = false;

/** Stops the runtime (and its workerd processes), then exits with `code`. */
async function stop(code) {
  if (stopping) return;
  stopping = true;
  // Never hang on the way out: the caller's group kill is the backstop.
  setTimeout(() => process.exit(code), 5000).unref();
  try {
    await worker?.dispose();
  } catch (e) {
    console.error("worker.mjs: dispose failed:", e);
  }
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => void stop(0));
}
process.on("uncaughtException", (e) => {
  console.error("worker.mjs:", e);
  void stop(1);
});
process.on("unhandledRejection", (e) => {
  console.error("worker.mjs:", e);
  void stop(1);
});

try {
  worker = await unstable_startWorker({
    config: args.config,
    env: args.env,
    envFiles: args["env-file"] ? [args["env-file"]] : undefined,
    sendMetrics: false,
    dev: {
      remote: false,
      server: { hostname: "127.0.0.1", port: Number(args.port) },
      inspector,
      persist: args["persist-to"] ?? ".wrangler/state",
      logLevel: "log",
      liveReload: false,
    },
  });
  await worker.ready;
  const url = await worker.url;
  console.log(`worker ready on ${url.origin}`);
  if (inspector) {
    const devtools = await worker.inspectorUrl;
    console.log(`DevTools inspector on ${devtools}`);
  }
} catch (e) {
  console.error("worker.mjs: cannot start the worker:", e);
  await stop(1);
}
