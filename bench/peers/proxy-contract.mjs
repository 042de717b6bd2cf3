// The plain JS proxy doing what cleave's contract asks of every proxied page, and nothing
// else: no assignment, no signature computed. It drops every client header that could pass for
// cleave's own, sets the five headers the origin gets (fixed values of the right shape), and
// hands the visitor a response marked private, as a page that depends on assignments must be.
// What cleave's proxy costs beyond this is its own work: deciding, signing, crossing into wasm.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const incoming = request.headers;
    const uid = /(?:^|;\s*)cleave_uid=([^;]+)/.exec(incoming.get("cookie") ?? "")?.[1] ?? "new";
    const headers = new Headers(incoming);
    for (const name of [...incoming.keys()]) {
      if (name.replaceAll("_", "-").startsWith("cleave-") || name === "host") headers.delete(name);
    }
    headers.set("cleave-unit", uid);
    headers.set("cleave-snapshot", "1");
    headers.set("cleave-assignments", Array.from({ length: 20 }, (_, i) => `exp-${i}="treatment"`).join(", "));
    headers.set("cleave-signature", "0".repeat(64));
    headers.set("x-forwarded-host", url.host);
    const res = await fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    const out = new Response(res.body, res);
    out.headers.delete("cleave-exposed");
    out.headers.set("cache-control", "private");
    return out;
  },
};
