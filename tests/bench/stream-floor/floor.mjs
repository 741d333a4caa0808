// The floor of a streamed relay under wrangler dev: the upstream answer
// piped by the runtime (`/pipe`: no code per chunk), or read and written
// chunk by chunk in JavaScript (`/perchunk`: the least a relay that looks
// at each chunk can do, without wasm). See client.mjs.
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
    if (url.pathname === "/pipe") {
      return new Response(upstream.body, { headers: { "content-type": "text/event-stream" } });
    }
    const { readable, writable } = new TransformStream();
    (async () => {
      const writer = writable.getWriter();
      const reader = upstream.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await writer.write(value);
      }
      await writer.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/event-stream" } });
  },
};
