// A page's use of cleave through OpenFeature's web SDK and its OFREP provider, bundled by
// ofrep-browser.test.mjs with esbuild and served from another origin than the worker's.
import { OpenFeature } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";

window.startFlags = async ({ baseUrl, key, targetingKey, pollInterval }) => {
  await OpenFeature.setContext({ targetingKey, plan: "free" });
  const headers = key ? [["X-API-Key", key]] : [];
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({ baseUrl, headers, pollInterval }));
};

window.flag = (key, fallback) => {
  const client = OpenFeature.getClient();
  const details = typeof fallback === "boolean" ? client.getBooleanDetails(key, fallback) : client.getStringDetails(key, fallback);
  return { value: details.value, reason: details.reason, variant: details.variant, errorCode: details.errorCode ?? null };
};
