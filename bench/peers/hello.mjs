// The plain JS floor: a worker that answers every request with a fixed body. Whatever a
// worker costs beyond this is its own work.
export default {
  fetch() {
    return new Response("hello", { headers: { "content-type": "text/plain" } });
  },
};
