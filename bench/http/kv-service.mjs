// A read-only stand-in for Workers KV in a bare workerd: the SNAPSHOTS binding of the worker
// under test points here. workerd's KV binding asks `GET https://fake-host/<key>?urlencoded=true`.
import values from "./kv.json";

export default {
  async fetch(request) {
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    const value = values[key];
    return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
  },
};
