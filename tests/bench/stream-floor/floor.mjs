// The floor of a streamed relay under wrangler dev: the upstream answer
// piped by the runtime (`/pipe`: no code per chunk), read and written chunk
// by chunk in JavaScript (`/perchunk`), only read (`/readonly`: every chunk
// read, one write at the end), or read chunk by chunk and written by a
// zero-delay timer (`/tick`: what was read together leaves as one write, as
// src/http/body_writer.rs does). See client.mjs.
export default {
  async fetch(req) {
    const url = new URL(req.url);
    const upstreamUrl = url.searchParams.get("upstream");
    const marker = url.searchParams.get("marker");
    const upstream = await fetch(upstreamUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body: JSON.stringify({ model: "openai/gpt-oss-20b", stream: true, messages: [{ role: "user", content: marker }] }),
    });
    const mode = url.pathname.slice(1);
    if (mode === "pipe") {
      return new Response(upstream.body, { headers: { "content-type": "text/event-stream" } });
    }
    const { readable, writable } = new TransformStream();
    (async () => {
      const writer = writable.getWriter();
      const reader = upstream.body.getReader();
      let pending = [], timer = null;
      const flush = () => {
        timer = null;
        const total = pending.reduce((n, c) => n + c.length, 0);
        const all = new Uint8Array(total);
        let at = 0;
        for (const c of pending) { all.set(c, at); at += c.length; }
        pending = [];
        if (total > 0) writer.write(all);
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (mode === "perchunk") await writer.write(value);
        else pending.push(value);
        if (mode === "tick" && timer === null) timer = setTimeout(flush, 0);
      }
      if (timer !== null) clearTimeout(timer);
      flush();
      await writer.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/event-stream" } });
  },
};
