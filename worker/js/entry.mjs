// cleave's module entry. workerd calls `fetch` and `queue` on this plain object: no entrypoint
// class is constructed and no Proxy wraps the call per request. wasm-bindgen's glue starts a
// fresh wasm instance on the call after a trap or panic (its abort handler), so a failure
// never leaves the isolate broken.
import { DurableObject } from "cloudflare:workers";
import * as wasm from "../build/glue/index.js";

export default { fetch: wasm.fetch, queue: wasm.queue };

// Rust's start function counts wasm instances here; an object made by an earlier instance
// cannot be called after a restart.
const instances = wasm.__worker_init_state();

/** The environment's pointer register (worker/src/pointer_object.rs), one per environment. */
export class SnapshotPointer extends DurableObject {
  #inner;
  #instance;

  fetch(request) {
    if (this.#inner === undefined || this.#instance !== instances.instanceId) {
      this.#inner = new wasm.SnapshotPointer(this.ctx, this.env);
      this.#instance = instances.instanceId;
    }
    return this.#inner.fetch(request);
  }
}
