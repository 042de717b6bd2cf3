// OpenFeature tracking for cleave: gives an OFREP provider (server or web) a `track` that
// records the call as a cleave event, so `client.track("purchase", context, { value: 42 })`
// lands in results like `POST /_cleave/v1/events`. OFREP itself has no tracking call.
//
//   import { withCleaveTracking } from "./cleave-tracking.mjs";
//   const provider = withCleaveTracking(new OFREPProvider({ baseUrl, headers }), { baseUrl, headers });
//
// `baseUrl` is the one the provider uses (`https://edge.example.com/_cleave` or
// `.../_cleave/env/{env}`); `headers` are sent with each event (the server token, on a server).
// The event's unit is the context's `targetingKey`; its metric the tracking event's name; its
// value `details.value` (1 when absent, a conversion).

/** The events endpoint for an OFREP base URL. */
export function eventsUrl(baseUrl) {
  const url = new URL(baseUrl);
  const scoped = /^(.*)\/_cleave\/env\/([^/]+)\/?$/.exec(url.pathname);
  url.pathname = scoped ? `${scoped[1]}/_cleave/v1/events` : `${url.pathname.replace(/\/$/, "")}/v1/events`;
  if (scoped) url.searchParams.set("env", scoped[2]);
  return url.toString();
}

export function withCleaveTracking(provider, { baseUrl, headers = [], fetchImplementation = globalThis.fetch } = {}) {
  const target = eventsUrl(baseUrl);
  provider.track = (name, context = {}, details = {}) => {
    if (!context.targetingKey) return;
    const event = {
      event_id: globalThis.crypto.randomUUID(),
      unit: context.targetingKey,
      metric: name,
      value: typeof details.value === "number" ? details.value : 1,
    };
    // Tracking never throws into the application: a failed post is reported, not raised.
    fetchImplementation(target, {
      method: "POST",
      headers: [["content-type", "application/json"], ...headers],
      body: JSON.stringify({ events: [event] }),
      credentials: "include",
    }).then(
      (r) => (r.ok ? undefined : console.warn(`cleave: event ${name} refused (${r.status})`)),
      (e) => console.warn(`cleave: event ${name} not sent: ${e.message}`),
    );
  };
  return provider;
}
