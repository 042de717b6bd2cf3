// Test entry point: the built cleave worker, given a recording stand-in for its Analytics Engine
// dataset (locally, workerd's dataset discards every point, so nothing else could show what the
// worker wrote). GET /__analytics returns, and forgets, the points written so far.
import { WorkerEntrypoint } from "cloudflare:workers";
import Cleave from "../../worker/build/index.js";

const points = [];
const dataset = { writeDataPoint: (point) => points.push(structuredClone(point)) };

export default class extends WorkerEntrypoint {
  fetch(request) {
    if (new URL(request.url).pathname === "/__analytics") return Response.json(points.splice(0));
    return Cleave.fetch(request, { ...this.env, CLEAVE_ANALYTICS: dataset }, this.ctx);
  }
}
