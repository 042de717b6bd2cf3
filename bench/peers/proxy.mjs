// The plain JS proxy floor: forwards every request to ORIGIN_URL with one added header, and
// passes the origin's response back as it is. What cleave's proxy mode costs beyond this is
// the assignment work and what it does to the request and response.
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("x-peer", "plain");
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
