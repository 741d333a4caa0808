// Serves an embedded PGlite database to PostgreSQL clients over TCP, for
// `npm run dev` and the tests: the local default when no DATABASE_URL is set.
//
// PGlite is one PostgreSQL session in this process, so clients take turns.
// Every connection is accepted (pglite-server, from
// @electric-sql/pglite-socket, refuses those beyond --max-connections with
// "Too many connections", which the worker can only answer with a 503);
// their requests wait in one queue and run one at a time, in arrival order.
// A request is a whole protocol exchange: a simple query, or an extended
// query's messages up to its Sync (the worker sends Parse, Bind, Describe,
// Execute and Sync together), so one client's unnamed statement is never
// replaced by another's half-way, whatever the timing.
// A client inside a transaction (BEGIN … COMMIT) has the database to itself
// until it ends; if it disconnects first, its transaction is rolled back.
//
// Usage: node pglite.mjs --db DIR --port N [--host 127.0.0.1]
// Prints `pglite listening on HOST:PORT` once connections are accepted.
// SIGINT/SIGTERM close the database (flushing it to DIR) before exiting.
import net from "node:net";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";

const { values: args } = parseArgs({
  options: {
    db: { type: "string" },
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
if (!args.db || !args.port || !/^\d+$/.test(args.port)) {
  console.error("pglite.mjs: --db DIR and --port N are required");
  process.exit(2);
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Startup packets are small; anything larger is not PostgreSQL. */
const MAX_STARTUP = 10_000;
/** Extended-query messages that wait for a Sync: Parse, Bind, Describe,
 * Execute, Close. Any other message ends a unit. */
const AWAITS_SYNC = new Set(["P", "B", "D", "E", "C"].map((c) => c.charCodeAt(0)));
const TERMINATE = "X".charCodeAt(0);
const SYNC = "S".charCodeAt(0);
const QUERY = "Q".charCodeAt(0);
const SYNC_MESSAGE = Buffer.from([SYNC, 0, 0, 0, 4]);

const db = new PGlite(args.db);
await db.waitReady;

/** Units waiting for the database: `{ client, bytes }` in arrival order. */
const queue = [];
/** The client the database belongs to between units (in a transaction or
 * in the middle of an extended query), or null. */
let owner = null;
let running = false;
/** The client whose unit is running, or null. */
let current = null;
let stopping = false;
const clients = new Set();

/** One connection: buffers its bytes and cuts them into units. */
class Client {
  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.started = false;
    this.closed = false;
    /** Complete messages of an extended query not yet ended by a Sync. */
    this.pending = [];
    socket.setNoDelay(true);
    socket.on("data", (data) => this.receive(data));
    socket.on("error", () => this.close());
    socket.on("close", () => this.close());
  }

  receive(data) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
    while (!this.closed) {
      const taken = this.started ? this.typed() : this.startup();
      if (!taken) break;
    }
  }

  /** Handles one untyped startup-phase packet; false when incomplete. */
  startup() {
    if (this.buffer.length < 8) return false;
    const len = this.buffer.readInt32BE(0);
    const code = this.buffer.readInt32BE(4);
    if (len < 8 || len > MAX_STARTUP) {
      this.close();
      return false;
    }
    if (this.buffer.length < len) return false;
    const packet = this.buffer.subarray(0, len);
    this.buffer = this.buffer.subarray(len);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.write(Buffer.from("N"));
    } else if (code === CANCEL_REQUEST) {
      // There is no backend to signal: the request is dropped.
      this.close();
    } else {
      this.started = true;
      queue.push({ client: this, bytes: Buffer.from(packet), ends: true, startup: true });
      void pump();
    }
    return true;
  }

  /** Takes one typed message; false when incomplete. */
  typed() {
    if (this.buffer.length < 5) return false;
    const type = this.buffer[0];
    const len = this.buffer.readInt32BE(1);
    if (len < 4) {
      this.close();
      return false;
    }
    if (this.buffer.length < 1 + len) return false;
    const message = this.buffer.subarray(0, 1 + len);
    this.buffer = this.buffer.subarray(1 + len);
    if (type === TERMINATE) {
      this.close();
      return false;
    }
    this.pending.push(message);
    if (!AWAITS_SYNC.has(type)) {
      const bytes = Buffer.concat(this.pending);
      this.pending = [];
      enqueue(this, bytes, type === SYNC || type === QUERY);
    }
    return true;
  }

  write(bytes) {
    if (!this.closed && this.socket.writable) this.socket.write(bytes);
  }

  /** Ends the connection, dropping its queued units and rolling back a
   * transaction it left open. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clients.delete(this);
    this.socket.destroy();
    for (let i = queue.length - 1; i >= 0; i--) {
      if (queue[i].client === this) queue.splice(i, 1);
    }
    if (owner === this && current !== this) {
      owner = null;
      release();
    }
    void pump();
  }
}

/** Puts the session back as a new client expects it after its owner left:
 * ends an extended query left open, rolls back a transaction left open. */
function release() {
  queue.unshift({
    client: null,
    bytes: Buffer.concat([SYNC_MESSAGE, simpleQuery("ROLLBACK")]),
    ends: true,
  });
}

/** A simple-query message for `sql`. */
function simpleQuery(sql) {
  const text = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head[0] = QUERY;
  head.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}

/** Queues a unit; `ends` says whether it leaves no extended query open. */
function enqueue(client, bytes, ends) {
  queue.push({ client, bytes, ends });
  void pump();
}

/** Runs queued units one at a time until none can run. */
async function pump() {
  if (running) return;
  running = true;
  try {
    for (;;) {
      // A connection's start-up goes ahead of the queued statements (the
      // worker gives up on a connection not started within 5 s), but never
      // into another client's transaction.
      const startup = queue.findIndex((u) => u.startup);
      const i = owner
        ? queue.findIndex((u) => u.client === owner)
        : startup >= 0
          ? startup
          : 0;
      if (i < 0 || queue.length === 0) break;
      const [unit] = queue.splice(i, 1);
      await run(unit);
    }
  } finally {
    running = false;
  }
}

async function run({ client, bytes, ends }) {
  current = client;
  try {
    await db.runExclusive(() =>
      db.execProtocolRawStream(bytes, {
        onRawData: (data) => client?.write(Buffer.from(data)),
      }),
    );
  } catch (e) {
    console.error("pglite.mjs: a request failed:", e);
    client?.close();
  }
  current = null;
  const holds = db.isInTransaction() || !ends;
  if (client && !client.closed && holds) {
    owner = client;
  } else {
    if (owner === client) owner = null;
    if (client?.closed && holds) release();
  }
}

const server = net.createServer((socket) => {
  if (stopping) {
    socket.destroy();
    return;
  }
  clients.add(new Client(socket));
});
server.on("error", (e) => {
  console.error("pglite.mjs:", e);
  process.exit(1);
});
server.listen({ port: Number(args.port), host: args.host, backlog: 1024 }, () => {
  console.log(`pglite listening on ${args.host}:${args.port} (data in ${args.db})`);
});

async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5000).unref();
  server.close();
  for (const c of [...clients]) c.close();
  try {
    await db.close();
  } catch (e) {
    console.error("pglite.mjs: close failed:", e);
  }
  process.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => void stop());
}
