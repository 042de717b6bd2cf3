// The dashboard in a real headless Chromium against a real cleave-admin on Postgres, publishing
// into the local KV of the compiled worker in workerd: everything an operator does is done by
// clicking and typing, and checked where it lands (the API, the worker's decisions).
// Screenshots of the main pages go to target/dashboard-screenshots/.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { ROOT, call, databaseUrl, startAdmin, startWorker, waitFor, freePort } from "./harness.mjs";

const run = promisify(execFile);
const PUBLISHER = "dash-publisher-token";
const VIEWER = "dash-viewer-token";
const INGEST = "dash-ingest-token";
// The simulated buyers come from a trusted server, which may record for any unit it names.
const SERVER_TOKEN = "dash-server-token";
const SERVER = { authorization: `Bearer ${SERVER_TOKEN}` };
const REFRESH_MS = 300;
const database = `cleave_dash_${process.pid}`;
const SHOTS = join(ROOT, "target/dashboard-screenshots");
const CHROMIUM = process.env.CLEAVE_CHROMIUM ?? "/usr/bin/chromium";
const port = await freePort();
let baseUrl, worker, admin, browser, page;
const state = {};

const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const pfmt = (p) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
const auth = (token = PUBLISHER) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });

async function api(method, path, body, token = PUBLISHER) {
  const res = await fetch(`${admin.url}${path}`, { method, headers: auth(token), body: body && JSON.stringify(body) });
  const json = res.status === 204 ? null : await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** docs/contracts.md §2: bucket and gate from sha256(salt ":" unit). */
function draw(salt, unit) {
  const d = createHash("sha256").update(`${salt}:${unit}`, "utf8").digest();
  return { bucket: Number(d.readBigUInt64BE(0) % 10000n), gate: Number(d.readBigUInt64BE(8) % 10000n) };
}

async function shot(name, viewport = { width: 1280, height: 900 }) {
  await page.setViewportSize(viewport);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(token) {
  await page.goto(`${admin.url}/`);
  await page.getByLabel("Token").fill(token);
  await page.getByLabel("Token").press("Enter");
  await page.getByRole("heading", { name: "Experiments" }).waitFor();
}

const dismissToasts = () => page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));

/**
 * Clicks `button` and waits for the toast (matching `pattern`) that the action ends with: a
 * save re-renders the page before it says so, so the next step sees the new page.
 */
async function clickFor(button, pattern = /./) {
  await dismissToasts();
  await button.click();
  const note = page.locator(".toast", { hasText: pattern }).last();
  await note.waitFor();
  const text = await note.textContent();
  await dismissToasts();
  return text;
}

before(async () => {
  baseUrl = process.env.DATABASE_URL;
  assert.ok(baseUrl, "DATABASE_URL must point at a Postgres (scripts/test.sh starts one)");
  await mkdir(SHOTS, { recursive: true });
  await run("psql", ["-q", baseUrl, "-c", `create database ${database}`]);
  worker = await startWorker({
    kvId: "cleave-snapshots-local",
    vars: {
      CLEAVE_ENV: "shop", CLEAVE_REFRESH_MS: REFRESH_MS,
      CLEAVE_INGEST_URL: `http://127.0.0.1:${port}/ingest`, CLEAVE_INGEST_TOKEN: INGEST,
      CLEAVE_SERVER_TOKEN: SERVER_TOKEN,
    },
  });
  admin = await startAdmin({
    port,
    headers: auth(),
    env: {
      DATABASE_URL: databaseUrl(baseUrl, database),
      CLEAVE_ADMIN_TOKENS: `publisher:alice:${PUBLISHER},viewer:victor:${VIEWER},ingest:edge:${INGEST}`,
      CLEAVE_SINK: "wrangler-local", CLEAVE_REPO_ROOT: ROOT, CLEAVE_KV_PERSIST_TO: join(worker.dir, "state"),
    },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
});

after(async () => {
  await browser?.close();
  await admin?.stop();
  await worker?.stop();
  if (baseUrl) await run("psql", ["-q", baseUrl, "-c", `drop database if exists ${database}`]).catch(() => {});
});

test("the files are served with a strict content security policy, and carry no data", async () => {
  const res = await fetch(`${admin.url}/ui/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-security-policy"), /script-src 'self'/);
  assert.match(await res.text(), /<script type="module" src="\/ui\/app.js">/);
  assert.equal((await fetch(`${admin.url}/ui/nope.js`)).status, 404);
  // Reads need a token here (CLEAVE_ADMIN_TOKENS is set), and the dashboard's API calls too.
  assert.equal((await fetch(`${admin.url}/session`)).status, 401);
  assert.deepEqual(await api("GET", "/session", undefined, VIEWER),
    { actor: "victor", role: "viewer", canEdit: false, canPublish: false, tokensRequired: true });
});

test("an environment and an experiment made in the UI are published and decided by the worker", async () => {
  await signIn(PUBLISHER);
  await page.getByLabel("Name").first().fill("shop");
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator('article.env[data-env="shop"]').waitFor();

  await page.getByRole("link", { name: "New experiment" }).first().click();
  await page.getByLabel("Key").fill("checkout-cta");
  await page.getByLabel("Name").fill("Checkout button");
  await clickFor(page.getByRole("button", { name: "Create experiment" }));
  await page.locator("#experiment-key", { hasText: "checkout-cta" }).waitFor();
  state.id = page.url().split("/").pop();

  for (const [key, color] of [["control", "grey"], ["treatment", "blue"]]) {
    await page.locator("#new-variant-key").fill(key);
    await page.locator("#new-variant-payload").fill(JSON.stringify({ color }));
    assert.equal(await clickFor(page.getByRole("button", { name: "Add variant" })), "Saved");
    await page.locator(`form.variant[data-variant="${key}"]`).waitFor();
  }

  // Allocation: split evenly, then move the boundary with the keyboard (10 x Shift+Left =
  // -1000 buckets) and leave the top 1000 buckets empty by typing.
  // Drag the boundary to about 30% with the mouse: the neighbour's start follows it.
  await page.getByRole("button", { name: "Split evenly" }).click();
  const handle = page.locator('.alloc-handle[data-variant="control"]');
  const bar = await page.locator(".alloc-bar").boundingBox();
  const grip = await handle.boundingBox();
  await page.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
  await page.mouse.down();
  await page.mouse.move(bar.x + bar.width * 0.3, grip.y + grip.height / 2, { steps: 8 });
  await page.mouse.up();
  const dragged = Number(await handle.getAttribute("aria-valuenow"));
  assert.ok(Math.abs(dragged - 2999) <= 20, `dragged to ${dragged}`);
  assert.equal(await page.locator("#alloc-1-start").inputValue(), String(dragged + 1));
  await page.getByRole("button", { name: "Split evenly" }).click();
  await handle.focus();
  for (let i = 0; i < 10; i++) await page.keyboard.press("Shift+ArrowLeft");
  assert.equal(await handle.getAttribute("aria-valuenow"), "3999");
  await page.locator("#alloc-1-end").fill("8999");
  assert.equal(await clickFor(page.getByRole("button", { name: "Save allocation" })), "Saved");
  await page.locator("#exp-traffic").waitFor();
  await page.locator("#exp-traffic").fill("50");
  assert.equal(await clickFor(page.getByRole("button", { name: "Save settings" })), "Saved");

  const saved = await api("GET", `/experiments/${state.id}`);
  const byId = new Map(saved.variants.map((v) => [v.id, v.key]));
  assert.deepEqual(saved.allocations.map((a) => [byId.get(a.variantId), a.rangeStart, a.rangeEnd]),
    [["control", 0, 3999], ["treatment", 4000, 8999]]);
  assert.equal(saved.traffic, 5000);

  // Start: the dialog shows the plan before anything publishes: 50% traffic x 90% allocated.
  await page.getByRole("button", { name: "Start" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /checkout-cta starts enrolling: 45\.00% of units change assignment/);
  // How long it will need, before anything runs: a 10% baseline, a 5% relative change and
  // 2,000 visitors a day of which the 50% traffic enrols 1,000 — the API's plan, in words.
  await dialog.getByLabel("Visitors a day").fill("2000");
  const planned = await api("GET", "/sample-size?baseline=0.1&mde=0.05&variants=2&daily_units=1000");
  const estimate = dialog.locator("#plan-estimate");
  await estimate.filter({ hasText: `about ${Math.ceil(planned.daysLeft)} day(s)` }).waitFor();
  assert.match(await estimate.textContent(), new RegExp(`^${planned.unitsNeeded.toLocaleString("en")} units \\(${planned.unitsPerVariant.toLocaleString("en")} per variant\\) to detect a 5\\.0% change`));
  // A mean needs its spread: the dialog asks for it rather than guessing.
  await dialog.locator("#plan-kind").selectOption("mean");
  await estimate.filter({ hasText: "standard deviation" }).waitFor();
  await dialog.getByLabel("Control's baseline").fill("40");
  await dialog.getByLabel("Standard deviation per unit").fill("25");
  const mean = await api("GET", "/sample-size?baseline=40&sd=25&mde=0.05&variants=2&daily_units=1000");
  await estimate.filter({ hasText: new RegExp(`^${mean.unitsNeeded.toLocaleString("en")} units`) }).waitFor();
  await shot("start-plan");
  assert.match(await clickFor(dialog.getByRole("button", { name: "Start" }), /published/), /RUNNING; published v1/);
  await page.locator(".badge.status-running").first().waitFor();

  const [served] = await waitFor(async () => (await call(`${worker.url}/_cleave/health`)).json?.data?.version === 1, REFRESH_MS * 20);
  assert.ok(served, "the worker never served v1");
  const ranges = { control: [0, 3999], treatment: [4000, 8999] };
  let enrolled = 0;
  for (let i = 0; i < 200; i++) {
    const unit = `shopper-${i}`;
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}`);
    const { bucket, gate } = draw(saved.salt, unit);
    const want = gate < 5000 ? Object.keys(ranges).find((k) => bucket >= ranges[k][0] && bucket <= ranges[k][1]) : undefined;
    assert.equal(r.json.data.assignments["checkout-cta"]?.variant, want, `${unit}: bucket ${bucket} gate ${gate}`);
    if (want) {
      enrolled += 1;
      assert.deepEqual(r.json.data.assignments["checkout-cta"].payload, { color: want === "control" ? "grey" : "blue" });
    }
  }
  assert.ok(enrolled > 50 && enrolled < 130, `45% of 200 enrolled: ${enrolled}`);
  await shot("experiment");
  await shot("experiment-phone", { width: 390, height: 844 });
  await page.getByRole("link", { name: "Experiments" }).first().click();
  await page.locator("table.list a", { hasText: "checkout-cta" }).waitFor();
  await shot("overview");
});

test("a refused edit shows each problem next to its field and changes nothing", async () => {
  await page.goto(`${admin.url}/ui/#/experiments/${state.id}`);
  await page.locator("#exp-traffic").fill("150");
  await page.getByRole("button", { name: "Save settings" }).click();
  const trafficError = page.locator('[data-path="traffic"] .field-error');
  await trafficError.waitFor();
  assert.match(await trafficError.textContent(), /traffic 15000 is outside 0..=10000/);
  assert.equal(await page.locator("#exp-traffic").getAttribute("aria-invalid"), "true");

  // Overlapping ranges, one past the last bucket: the overlap shows at the bar, the range
  // at its own row.
  await page.locator("#alloc-1-start").fill("3000");
  await page.locator("#alloc-1-end").fill("10000");
  await page.getByRole("button", { name: "Save allocation" }).click();
  const barError = page.locator(".alloc-wrap > .field-error");
  await barError.waitFor();
  assert.match(await barError.textContent(), /overlap at 3000/);
  assert.match(await page.locator('[data-row="1"] > .field-error').textContent(), /range \[3000, 10000\] is outside 0..=9999/);
  assert.equal(await page.locator('[data-row="0"] > .field-error').isVisible(), false);

  // A numeric operator with a word for its value: the error sits at that condition's value.
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.locator("#rule-0-0-attribute").fill("cart_total");
  await page.locator("#rule-0-0-operator").selectOption("gt");
  await page.locator("#rule-0-0-value").fill("lots");
  await page.getByRole("button", { name: "Save targeting" }).click();
  const valueError = page.locator('[data-path="targeting[0].conditions[0].value"] .field-error');
  await valueError.waitFor();
  assert.match(await valueError.textContent(), /number/);
  await shot("validation-errors");

  const unchanged = await api("GET", `/experiments/${state.id}`);
  assert.equal(unchanged.traffic, 5000);
  assert.equal(unchanged.allocations[1].rangeStart, 4000);
  assert.deepEqual(unchanged.targetingRules, []);
});

test("publish history shows the diff and rolls back in one click", async () => {
  await page.goto(`${admin.url}/ui/#/experiments/${state.id}`);
  const treatment = page.locator('form.variant[data-variant="treatment"]');
  await treatment.getByLabel("Payload (JSON)").fill('{"color": "green"}');
  assert.equal(await clickFor(treatment.getByRole("button", { name: "Save variant" })), "Saved");

  await page.goto(`${admin.url}/ui/#/`);
  await page.locator('article.env[data-env="shop"]').getByRole("button", { name: "Publish…" }).click();
  const dialog = page.getByRole("dialog");
  // Before publishing: the payload edit, field by field, and that nobody changes variant.
  assert.match(await dialog.locator("tr", { hasText: "variants[1].payload.color" }).textContent(), /"blue".*"green"/);
  assert.match(await dialog.textContent(), /checkout-cta changes: 0\.00% of units change assignment/);
  assert.match(await dialog.textContent(), /Also changed: payloads/);
  await shot("publish-plan");
  assert.match(await clickFor(dialog.getByRole("button", { name: "Publish" }), /Published/), /Published v2/);
  const probe = async () => (await call(`${worker.url}/_cleave/v1/decide?id.user=shopper-1&experiments=checkout-cta`)).json;
  const payloadAt = async (version) => {
    const [body] = await waitFor(async () => {
      const b = await probe();
      return b.meta.snapshot.version === version ? b : undefined;
    }, REFRESH_MS * 20);
    assert.ok(body, `the worker never served v${version}`);
    return body.data.assignments["checkout-cta"]?.payload;
  };
  const { bucket, gate } = draw("checkout-cta", "shopper-1");
  const treated = gate < 5000 && bucket >= 4000 && bucket <= 8999;
  if (treated) assert.deepEqual(await payloadAt(2), { color: "green" });
  else await payloadAt(2);

  await page.locator('article.env[data-env="shop"]').getByRole("link", { name: "Publish history" }).click();
  const v2 = page.locator('tr[data-version="2"]');
  await v2.getByRole("button", { name: "Diff with previous" }).click();
  const diff = page.locator("#diff-panel");
  await diff.locator("text=v1 → v2").waitFor();
  const change = diff.locator("tr", { hasText: "variants[1].payload.color" });
  assert.match(await change.textContent(), /"blue".*"green"/);
  await shot("history");

  await page.locator('tr[data-version="1"]').getByRole("button", { name: "Roll back to this" }).click();
  const confirm = page.getByRole("dialog");
  assert.match(await confirm.textContent(), /from v2 to v1/);
  assert.match(await clickFor(confirm.getByRole("button", { name: "Roll back to v1" }), /serves/), /shop now serves v1/);
  await page.locator('tr.current[data-version="1"]').waitFor();
  const back = await payloadAt(1);
  if (treated) assert.deepEqual(back, { color: "blue" });
  const audit = await api("GET", `/audit?entityId=${(await api("GET", "/environments"))[0].id}`);
  assert.equal(audit.at(-1).action, "environment.rollback");
  assert.equal(audit.at(-1).actor, "alice");
});

test("results show interval charts and the sequential status, then the SRM and guardrail warnings", async () => {
  await api("POST", "/metric-definitions", { key: "purchase", kind: "conversion", direction: "increase" });
  await api("PUT", `/experiments/${state.id}/metrics`, { metrics: [{ metric: "purchase", role: "primary" }] });
  await api("POST", `/environments/${(await api("GET", "/environments"))[0].id}/rollback`, { version: 2 });
  await waitFor(async () => (await call(`${worker.url}/_cleave/health`)).json?.data?.version === 2, REFRESH_MS * 20);
  // Exposures travel from the worker to the admin's /ingest; events are posted to the worker.
  const events = [];
  const assigned = {};
  // Enough buyers for every variant to reach the guardrail's 100 units.
  for (let i = 0; i < 800; i++) {
    const unit = `buyer-${i}`;
    // Buyers on phones and on desktops: the edge records which on each exposure.
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&experiments=checkout-cta`,
      { headers: { ...SERVER, "user-agent": i % 2 ? IPHONE : DESKTOP } });
    const variant = r.json.data.assignments["checkout-cta"]?.variant;
    if (variant) assigned[unit] = variant;
    if (variant && i % (variant === "treatment" ? 3 : 5) === 0) {
      events.push({ event_id: `e-${i}`, unit, metric: "purchase" });
    }
  }
  const posted = await call(`${worker.url}/_cleave/v1/events`, {
    method: "POST", headers: { "content-type": "application/json", ...SERVER }, body: JSON.stringify({ events }),
  });
  assert.equal(posted.status, 202, posted.text);
  const [results] = await waitFor(async () => {
    const r = await api("GET", `/experiments/${state.id}/results`);
    const units = r.variants.reduce((n, v) => n + v.units, 0);
    const converted = r.metrics[0]?.variants.reduce((n, v) => n + v.conversions, 0) ?? 0;
    // Every assigned buyer's exposure, so the page reads the same numbers as this test.
    return units === Object.keys(assigned).length && converted === events.length ? r : undefined;
  }, 30_000);
  assert.ok(results, "exposures and events never reached the admin");

  await page.goto(`${admin.url}/ui/#/experiments/${state.id}/results`);
  await page.locator(".ci-chart").waitFor();
  assert.equal(await page.locator(".ci-chart circle").count(), 1);
  assert.equal(await page.locator("#srm-warning").count(), 0);
  assert.match(await page.locator("#sequential-status").textContent(), /Sequential test/);
  const row = page.locator('.metric tr[data-variant="treatment"]');
  const comparison = results.metrics[0].comparisons[0];
  assert.match(await row.textContent(), new RegExp(comparison.verdict));
  // The Bayesian reading and the sample size plan, as the API computed them.
  assert.ok(comparison.bayesian && results.plan, JSON.stringify(results));
  const chance = `${(comparison.bayesian.chanceToBeatControl * 100).toFixed(1)}%`;
  assert.equal(await row.locator("td.chance").textContent(), chance);
  assert.match(await page.locator("#plan").textContent(),
    new RegExp(`needs ${results.plan.unitsNeeded.toLocaleString("en")} units`));
  // What the units rest on: every first exposure came from a named decide call.
  const units = page.locator('tr[data-units-variant="treatment"] td.sources');
  assert.match(await units.textContent(), /^\d+ decide API$/);
  assert.match(await page.locator("#excluded-share").textContent(), /^0\.0% of exposed units are left out/);
  // Over time: today's point is today's result, with its always-valid band.
  const timeline = await api("GET", `/experiments/${state.id}/timeline`);
  const today = timeline.days.at(-1);
  assert.equal(today.comparisons[0].difference, comparison.difference);
  await page.locator(".timeline-chart").waitFor();
  assert.equal(await page.locator('.timeline-chart g[data-variant="treatment"] circle').count(), timeline.days.length);
  const cell = page.locator(`.timeline-table tr[data-day="${today.day}"][data-series="treatment"] td.difference`);
  assert.equal(await cell.textContent(), Number(comparison.difference).toPrecision(4));
  // By slice: flagged exploratory; locally every request has the same country.
  assert.match(await page.locator("#slices-exploratory").textContent(), /Exploratory/);
  await page.locator("#slice-table tr").first().waitFor();
  await page.locator("#slice-dimension").selectOption("device");
  await page.locator('#slice-table tr[data-slice="mobile"]').waitFor();
  const byDevice = await api("GET", `/experiments/${state.id}/slices?dimension=device`);
  assert.deepEqual(byDevice.slices.map((x) => x.value).sort(), ["desktop", "mobile"]);
  assert.equal(byDevice.slices.reduce((n, x) => n + x.units, 0), Object.keys(assigned).length);
  for (const slice of byDevice.slices) {
    const c = slice.metrics[0].comparisons[0];
    const cells = await page.locator(`#slice-table tr[data-slice="${slice.value}"][data-metric="purchase"][data-variant="treatment"] td`).allTextContents();
    assert.equal(cells[6], pfmt(c.adjustedSequentialPValue), slice.value);
    assert.equal(cells[7], c.verdict, slice.value);
  }
  assert.equal(await page.locator("#slice-srm-warning").count(), 0);
  await shot("results");
  await shot("results-phone", { width: 390, height: 844 });
  // Verdicts by the Bayesian reading instead: chosen on the page, kept by the admin.
  await page.locator("#results-decision").selectOption("bayesian");
  await page.locator(".toast", { hasText: "Bayesian chance to beat control" }).waitFor();
  const bayesian = await api("GET", `/experiments/${state.id}/results`);
  assert.equal(bayesian.decision, "bayesian");
  const chanceNow = bayesian.metrics[0].comparisons[0].bayesian.chanceToBeatControl;
  const expected = chanceNow >= 0.95 ? "better" : chanceNow <= 0.05 ? "worse" : "inconclusive";
  assert.equal(bayesian.metrics[0].comparisons[0].verdict, expected);
  assert.match(await page.locator('.metric tr[data-variant="treatment"]').textContent(), new RegExp(expected));
  assert.equal(await page.locator("#results-decision").inputValue(), "bayesian");
  await api("PUT", `/experiments/${state.id}/decision`, { decision: "sequential" });

  // A guardrail: nine treatment units in ten err, one control unit in twenty does.
  await api("POST", "/metric-definitions", { key: "errors", kind: "conversion", direction: "decrease" });
  await api("PUT", `/experiments/${state.id}/metrics`, {
    metrics: [{ metric: "purchase", role: "primary" }, { metric: "errors", role: "guardrail" }],
  });
  const erring = Object.entries(assigned)
    .filter(([, v], i) => (v === "treatment" ? i % 10 !== 0 : i % 20 === 0))
    .map(([unit]) => unit);
  const errors = erring.map((unit, i) => ({ event_id: `err-${i}`, unit, metric: "errors" }));
  const sent = await call(`${worker.url}/_cleave/v1/events`, {
    method: "POST", headers: { "content-type": "application/json", ...SERVER }, body: JSON.stringify({ events: errors }),
  });
  assert.equal(sent.status, 202, sent.text);
  const [breached] = await waitFor(async () =>
    (await api("GET", `/experiments/${state.id}/results`)).guardrailBreaches.length > 0, 30_000);
  assert.ok(breached, `the guardrail never breached: ${JSON.stringify((await api("GET", `/experiments/${state.id}/results`)).metrics)}`);
  // Moving the allocation after the fact makes the observed split a mismatch.
  const current = await api("GET", `/experiments/${state.id}`);
  await api("PUT", `/experiments/${state.id}/allocations`, { allocations: [
    { variantId: current.variants[0].id, rangeStart: 0, rangeEnd: 999 },
    { variantId: current.variants[1].id, rangeStart: 1000, rangeEnd: 8999 },
  ] });
  await page.reload();
  await page.locator("#srm-warning").waitFor();
  assert.match(await page.locator("#srm-warning").textContent(), /Sample ratio mismatch/);
  assert.match(await page.locator("#guardrail-warning").textContent(), /errors is worse in treatment/);
  assert.equal(await page.locator(".ci-chart").count(), 2);
  await shot("results-warnings");
});

test("flags are made, ramped with the slider and killed from the dashboard, and the worker follows", async () => {
  const env = (await api("GET", "/environments")).find((e) => e.name === "shop");
  await page.goto(`${admin.url}/ui/#/`);
  await page.locator('article.env[data-env="shop"]').getByRole("link", { name: "Flags" }).click();
  await page.locator("#new-flag-key").fill("new-nav");
  await clickFor(page.getByRole("button", { name: "Create flag" }));
  await page.locator("#flag-rules").waitFor();
  const id = page.url().split("/").pop();
  // A rollout rule typed in, then its slider moved from 10% to 20% with the keyboard.
  const rollout = [{ serve: { rollout: { traffic: 1000, split: [{ variant: "on", weight: 10000 }] } } }];
  await page.locator("#flag-rules").fill(JSON.stringify(rollout));
  await page.locator("#flag-rules").dispatchEvent("change");
  const slider = page.locator("input.rollout");
  assert.equal(await slider.inputValue(), "10");
  await slider.focus();
  for (let i = 0; i < 10; i++) await page.keyboard.press("ArrowRight");
  assert.match(await page.locator(".slider output").textContent(), /20%/);
  assert.equal(JSON.parse(await page.locator("#flag-rules").inputValue())[0].serve.rollout.traffic, 2000);
  assert.equal(await clickFor(page.getByRole("button", { name: "Save", exact: true })), "Saved");
  assert.equal((await api("GET", `/flags/${id}`)).rules[0].serve.rollout.traffic, 2000);
  // A mistake lands next to its field, and nothing is kept.
  await page.locator("#flag-off").fill("nope");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.locator('[data-path="offVariant"] .field-error', { hasText: 'no variant "nope"' }).waitFor();
  assert.equal((await api("GET", `/flags/${id}`)).offVariant, "off");
  await shot("flag");

  await api("POST", `/environments/${env.id}/publish?confirm=true`);
  const evaluate = () => call(`${worker.url}/_cleave/ofrep/v1/evaluate/flags/new-nav`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ context: { targetingKey: "shopper-1" } }),
  });
  const [live] = await waitFor(async () => (await evaluate()).status === 200, REFRESH_MS * 20);
  assert.ok(live, "the worker never served the flag");
  assert.equal((await evaluate()).json.value, draw("new-nav", "shopper-1").gate < 2000);

  await page.goto(`${admin.url}/ui/#/environments/${env.id}/flags`);
  const row = page.locator('tr[data-flag="new-nav"]');
  assert.match(await row.textContent(), /roll out to 20%/);
  await row.getByRole("button", { name: "Kill" }).click();
  const dialog = page.getByRole("dialog");
  assert.match(await dialog.textContent(), /Everyone gets "off"/);
  assert.match(await clickFor(dialog.getByRole("button", { name: "Kill it" }), /Published/), /Published v\d+/);
  await page.locator('tr[data-flag="new-nav"] .badge', { hasText: "KILLED" }).waitFor();
  await shot("flags");
  const [killed] = await waitFor(async () => (await evaluate()).json?.reason === "DISABLED", REFRESH_MS * 20);
  assert.ok(killed, "the kill switch never reached the worker");
});

test("a draft flag is launched or deleted from the dashboard; unverified identity sources are flagged", async () => {
  const env = (await api("GET", "/environments")).find((e) => e.name === "shop");
  await page.goto(`${admin.url}/ui/#/environments/${env.id}/flags`);
  await page.locator("#new-flag-key").fill("typo-flag");
  await page.locator("#new-flag-draft").check();
  await clickFor(page.getByRole("button", { name: "Create flag" }));
  await page.locator("#flag-rules").waitFor();
  const id = page.url().split("/").pop();
  await page.locator(".badge.status-draft", { hasText: "DRAFT" }).waitFor();
  assert.equal((await api("GET", `/flags/${id}`)).draft, true);
  await page.getByRole("button", { name: "Delete draft" }).click();
  assert.equal(await clickFor(page.getByRole("dialog").getByRole("button", { name: "Delete" })), "Deleted");
  await page.locator("#new-flag-key").waitFor();
  assert.equal((await fetch(`${admin.url}/flags/${id}`, { headers: auth() })).status, 404);

  await page.locator("#new-flag-key").fill("spring-banner");
  await page.locator("#new-flag-draft").check();
  await clickFor(page.getByRole("button", { name: "Create flag" }));
  await page.locator("#flag-rules").waitFor();
  const launched = page.url().split("/").pop();
  await page.getByRole("button", { name: "Launch" }).click();
  assert.match(await clickFor(page.getByRole("dialog").getByRole("button", { name: "Launch" })), /Launched/);
  await page.locator(".section-head .badge", { hasText: "ON" }).waitFor();
  assert.equal((await api("GET", `/flags/${launched}`)).draft, false);
  assert.equal(await page.getByRole("button", { name: "Delete draft" }).count(), 0, "a launched flag is archived, not deleted");
  await page.getByRole("button", { name: "Archive" }).waitFor();

  const portal = await api("POST", "/environments", { name: "portal" });
  await api("PUT", `/environments/${portal.id}/settings`, {
    identity: [{ unit: "team", source: "header", name: "x-team" }],
  });
  await page.goto(`${admin.url}/ui/#/`);
  const warning = page.locator('article.env[data-env="portal"] .identity-warning');
  await warning.first().waitFor();
  assert.match(await warning.first().textContent(), /`team`.*unverified/);
});

test("a draft and its variants are deleted from the dashboard, and nothing that ran offers it", async () => {
  const env = (await api("GET", "/environments")).find((e) => e.name === "shop");
  const draft = await api("POST", "/experiments", { key: "typo-experiment", environmentId: env.id });
  for (const key of ["control", "oops"]) await api("POST", `/experiments/${draft.id}/variants`, { key });
  await page.goto(`${admin.url}/ui/#/experiments/${draft.id}`);
  await page.locator('form.variant[data-variant="oops"]').getByRole("button", { name: "Delete variant" }).click();
  assert.equal(await clickFor(page.getByRole("dialog").getByRole("button", { name: "Delete" })), "Deleted");
  await page.locator('form.variant[data-variant="control"]').waitFor();
  assert.deepEqual((await api("GET", `/experiments/${draft.id}`)).variants.map((v) => v.key), ["control"]);
  await page.getByRole("button", { name: "Delete draft" }).click();
  assert.equal(await clickFor(page.getByRole("dialog").getByRole("button", { name: "Delete" })), "Deleted");
  await page.getByRole("heading", { name: "Experiments" }).waitFor();
  const gone = await fetch(`${admin.url}/experiments/${draft.id}`, { headers: auth() });
  assert.equal(gone.status, 404);
  await page.goto(`${admin.url}/ui/#/experiments/${state.id}`);
  await page.locator("#experiment-key").waitFor();
  assert.equal(await page.getByRole("button", { name: "Delete draft" }).count(), 0, "a running experiment offers no delete");
  // Promotion: the running experiment copied into another environment as a draft.
  const staging = await api("POST", "/environments", { name: "staging" });
  await page.reload();
  await page.locator("#promote-env").selectOption(staging.id);
  await clickFor(page.getByRole("button", { name: "Copy to environment" }));
  await page.waitForURL((u) => !u.hash.endsWith(state.id));
  await page.locator("#experiment-key", { hasText: "checkout-cta" }).waitFor();
  await page.locator(".badge.status-draft").first().waitFor();
  const copies = await api("GET", `/experiments?environmentId=${staging.id}`);
  assert.deepEqual(copies.map((e) => [e.key, e.status]), [["checkout-cta", "DRAFT"]]);
  // A stopped experiment runs again as a new phase; results then offer both phases.
  await api("PATCH", `/experiments/${state.id}/status`, { status: "STOPPED" });
  await page.goto(`${admin.url}/ui/#/experiments/${state.id}`);
  await page.reload();
  await page.locator("#experiment-key").waitFor();
  await page.getByRole("button", { name: "Run again as a new phase" }).click();
  assert.match(await clickFor(page.getByRole("dialog").getByRole("button", { name: "New phase" })), /salt checkout-cta-2/);
  assert.equal((await api("GET", `/experiments/${state.id}`)).status, "DRAFT");
  // Each phase keeps its own history: the first shows the versions it was published in and
  // its changes, up to the stop; the new phase opens with the phase change.
  const first = page.locator('details.phase[data-phase="1"]');
  await first.waitFor();
  await first.locator("summary").click();
  assert.match(await first.textContent(), /Published in v\d+ \(running\)/);
  assert.match(await first.textContent(), /experiment\.status/);
  const second = page.locator('details.phase[data-phase="2"]');
  assert.match(await second.textContent(), /\(current\)/);
  assert.match(await second.locator("ol.changes li").first().textContent(), /experiment\.phase/);
  assert.match(await second.textContent(), /Not published in this phase/);
  await page.goto(`${admin.url}/ui/#/experiments/${state.id}/results`);
  const picker = page.locator("#results-phase");
  await picker.locator("option").nth(1).waitFor({ state: "attached" });
  assert.deepEqual(await picker.locator("option").allTextContents(), ["1 (checkout-cta)", "2 (checkout-cta-2)"]);
  await picker.selectOption("1");
  await page.locator("main p.muted", { hasText: "Phase (salt) checkout-cta;" }).waitFor();
});

test("a viewer sees everything but every change is disabled; long keys never widen a phone screen", async () => {
  const env = (await api("GET", "/environments"))[0].id;
  const longKey = `k${"very-long-experiment-key-".repeat(2)}x`.slice(0, 64);
  const long = await api("POST", "/experiments", { key: longKey, name: "A name ".repeat(20), environmentId: env });
  await api("POST", `/experiments/${long.id}/variants`, { key: `v${"-long-variant-key".repeat(3)}` });
  await page.evaluate(() => sessionStorage.clear());
  await signIn(VIEWER);
  assert.match(await page.locator("#session").textContent(), /victor \(viewer\)/);
  assert.ok(await page.locator("article.env").first().getByRole("button", { name: "Publish…" }).isDisabled());
  await page.goto(`${admin.url}/ui/#/experiments/${long.id}`);
  await page.locator("#experiment-key").waitFor();
  for (const name of ["Start", "Pause", "Stop", "Archive", "Save settings", "Save allocation", "Save targeting"]) {
    assert.ok(await page.getByRole("button", { name, exact: true }).isDisabled(), `${name} should be disabled for a viewer`);
  }
  for (const width of [390, 1280]) {
    for (const hash of ["#/", `#/experiments/${long.id}`, `#/experiments/${long.id}/results`, "#/audit", `#/environments/${env}/flags`]) {
      await page.setViewportSize({ width, height: 844 });
      await page.goto(`${admin.url}/ui/${hash}`);
      await page.locator("main h1").first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash} is ${overflow}px wider than a ${width}px screen`);
    }
  }
  await shot("audit-phone", { width: 390, height: 844 });
  await shot("audit", { width: 1280, height: 900 });
  await page.goto(`${admin.url}/ui/#/`);
  await page.locator("table.list a", { hasText: longKey }).waitFor();
  await shot("overview-phone", { width: 390, height: 844 });
});

test("an environment's holdout has a report of its own: everyone else against the held-out units", async () => {
  const shop = (await api("GET", "/environments")).find((e) => e.name === "shop");
  await page.goto(`${admin.url}/ui/#/environments/${shop.id}/holdout`);
  assert.match(await page.locator("#no-holdout").textContent(), /shop has no holdout/);
  await api("PUT", `/environments/${shop.id}/settings`, { ...shop.settings, holdout: { salt: "dash-hold", ranges: [[0, 4999]] } });
  const published = await api("POST", `/environments/${shop.id}/publish?confirm=true`);
  const [served] = await waitFor(async () => (await call(`${worker.url}/_cleave/health`)).json?.data?.version === published.version, REFRESH_MS * 20);
  assert.ok(served, `the worker never served v${published.version}`);
  // Every recording decision records the unit's holdout group, held out or not; held-out
  // units buy less often.
  const events = [];
  for (let i = 0; i < 300; i++) {
    const unit = `holdout-buyer-${i}`;
    const r = await call(`${worker.url}/_cleave/v1/decide?id.user=${unit}&experiments=checkout-cta`, { headers: SERVER });
    assert.equal(r.status, 200, r.text);
    const held = draw("holdout:dash-hold", unit).bucket <= 4999;
    if (i % (held ? 6 : 3) === 0) events.push({ event_id: `h-${i}`, unit, metric: "purchase" });
  }
  const posted = await call(`${worker.url}/_cleave/v1/events`, {
    method: "POST", headers: { "content-type": "application/json", ...SERVER }, body: JSON.stringify({ events }),
  });
  assert.equal(posted.status, 202, posted.text);
  const [report] = await waitFor(async () => {
    const r = await api("GET", `/environments/${shop.id}/holdout?metrics=purchase`);
    const units = r.variants.reduce((n, v) => n + v.units, 0);
    const converted = r.metrics[0].variants.reduce((n, v) => n + v.conversions, 0);
    return units === 300 && converted === events.length ? r : undefined;
  }, 30_000);
  assert.ok(report, "the holdout exposures and events never reached the admin");
  assert.equal(report.heldOutShare, 0.5);
  assert.deepEqual(report.variants.map((v) => v.key), ["held_out", "rest"]);

  await page.goto(`${admin.url}/ui/#/`);
  await page.locator(`article.env[data-env="shop"]`).getByRole("link", { name: "Holdout" }).click();
  await page.locator("#holdout-units").waitFor();
  assert.match(await page.locator("#holdout-summary").textContent(), /^50\.00% of user units held out of every experiment \(salt dash-hold\)/);
  for (const v of report.variants) {
    assert.equal(await page.locator(`#holdout-units tr[data-group="${v.key}"] td`).nth(1).textContent(), String(v.units));
  }
  const rest = report.metrics.find((m) => m.key === "purchase").comparisons[0];
  assert.equal(rest.variant, "rest");
  const row = page.locator('.metric[data-metric="purchase"] tr[data-variant="rest"]');
  assert.match(await row.textContent(), new RegExp(rest.verdict));
  assert.equal(await row.locator("td.chance").textContent(), `${(rest.bayesian.chanceToBeatControl * 100).toFixed(1)}%`);
  await shot("holdout");
});
