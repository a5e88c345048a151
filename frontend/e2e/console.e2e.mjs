// End-to-end test of the web console against a real `shoal serve`, in
// Debian's Chromium (never a downloaded browser). scripts/test-ui.sh starts
// the server on free ports with a tiny dataset `tiny` (snapshot 1) and a
// model `tiny` version 1 in production, then runs this with:
//
//   SHOAL_E2E_URL           the server's HTTP address
//   SHOAL_E2E_TOKEN         the server's admin token (its ./data/admin-token)
//   SHOAL_E2E_VIEWER_TOKEN  a token with the read scope only
//   SHOAL_E2E_PREDICT       an image to classify
//   SHOAL_E2E_UPLOAD        an image not yet in the dataset, to upload
//   SHOAL_E2E_SCREENSHOTS   where the pages' screenshots go
//
// It drives the pages as a person would: predict an image without a token,
// be asked to log in on the Datasets page, log in with a login link, upload
// to the dataset and take a snapshot, train on it and watch the live chart,
// promote the new version and see Predict answer with it; then log out and
// in again with a read-only token, which sees no Promote button, and read
// the API reference rendered from /openapi.json by Swagger UI (loaded only
// then), trying a call with that token. All along
// it fails on any Content-Security-Policy violation the page reports and on
// any response of the server without its security headers.
import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env("SHOAL_E2E_URL");
const adminToken = env("SHOAL_E2E_TOKEN");
const viewerToken = env("SHOAL_E2E_VIEWER_TOKEN");
const predictImage = env("SHOAL_E2E_PREDICT");
const uploadImage = env("SHOAL_E2E_UPLOAD");
const shots = env("SHOAL_E2E_SCREENSHOTS");
const executablePath = process.env.SHOAL_E2E_CHROMIUM ?? "/usr/bin/chromium";
const labels = ["Bag", "Sneaker", "Trouser"];
// Enough epochs that the job outlasts the page's subscription to its stream
// (an epoch of the tiny dataset takes about 0.1 s), so epochs arrive live.
const trainEpochs = 12;

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function step(name, fn) {
  const start = Date.now();
  await fn();
  console.log(`e2e: ok  ${name} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
}

await mkdir(shots, { recursive: true });
const profile = await mkdtemp(join(tmpdir(), "shoal-e2e-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(30_000);
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("dialog", (d) => d.accept());

// Content-Security-Policy violations, as the page reports them (its
// securitypolicyviolation events, handed to this script by a binding that
// the init script, injected by the browser and not by the page, calls) and
// as Chromium logs them to the console.
const cspViolations = [];
await context.exposeBinding("__shoalCSPViolation", (_source, v) => cspViolations.push(v));
await context.addInitScript(() => {
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__shoalCSPViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} (${e.sample})`);
  });
});
page.on("console", (m) => {
  if (/Content Security Policy/i.test(m.text())) cspViolations.push(`console: ${m.text()}`);
});

// The headers every response of the server must carry.
const securityHeaders = {
  "content-security-policy": (v) => /(^|;)\s*script-src 'self'\s*(;|$)/.test(v) && /frame-ancestors 'none'/.test(v) && !/unsafe-(inline|eval)/.test(v),
  "x-content-type-options": (v) => v === "nosniff",
  "x-frame-options": (v) => v === "DENY",
  "referrer-policy": (v) => v === "no-referrer",
};
const headerProblems = [];
// The console's files the page fetched, to tell what its first load carries.
const assetsLoaded = [];
page.on("request", (r) => {
  if (r.url().startsWith(`${base}/assets/`)) assetsLoaded.push(r.url());
});
let checkedResponses = 0;
page.on("response", async (r) => {
  if (!r.url().startsWith(base)) return;
  const h = await r.allHeaders().catch(() => null);
  if (!h) return;
  checkedResponses++;
  for (const [name, ok] of Object.entries(securityHeaders)) {
    if (!h[name] || !ok(h[name])) headerProblems.push(`${r.request().method()} ${r.url().slice(base.length)} (${r.status()}): ${name} = ${h[name]}`);
  }
});

// storage says where the page keeps the token.
const storage = () => page.evaluate(() => ({
  session: sessionStorage.getItem("shoal.token"),
  local: localStorage.length,
  cookie: document.cookie,
}));

// predict uploads the image on the Predict page and returns what it shows.
async function predict() {
  await page.locator("[data-testid=predict-file]").setInputFiles(predictImage);
  await page.locator("[data-testid=prediction-version]").waitFor();
  return {
    label: (await page.locator("[data-testid=prediction-label]").textContent())?.trim(),
    version: (await page.locator("[data-testid=prediction-version]").textContent())?.trim(),
    bars: await page.locator(".bars li").count(),
  };
}

let failed = false;
try {
  await step("Predict without a token: an uploaded image gets a prediction from tiny v1", async () => {
    const script = page.waitForResponse((r) => /\/assets\/.*\.js$/.test(r.url()));
    await page.goto(`${base}/`);
    const enc = (await script).headers()["content-encoding"];
    check(enc === "gzip", `the console's script came with content-encoding ${enc}; want gzip`);
    await page.locator("[data-testid=predict-model] option[value=tiny]").waitFor({ state: "attached" });
    const who = (await page.locator("[data-testid=caller-name]").textContent()).trim();
    check(who === "not logged in", `caller shown as "${who}"; want "not logged in"`);
    const got = await predict();
    check(labels.includes(got.label), `prediction label = ${got.label}; want one of ${labels}`);
    check(/^tiny v1 /.test(got.version), `answered by "${got.version}"; want tiny v1`);
    check(got.bars === 3, `top-k bars = ${got.bars}; want 3`);
    check(await page.locator("[data-testid=login]").count() === 0, "the Predict page asked to log in");
  });

  await step("refused without a token: the Datasets page asks to log in", async () => {
    await page.goto(`${base}/datasets?d=tiny`);
    const reason = (await page.locator("[data-testid=login-reason]").textContent()).trim();
    check(/needs a token with the read scope/.test(reason), `login page says: ${reason}`);
    check(await page.locator("[data-testid=dataset-counts]").count() === 0, "the dataset shows without a token");
    // The server refuses it too, whatever the page shows.
    const status = await page.evaluate(() => fetch("/v1/datasets").then((r) => r.status));
    check(status === 401, `GET /v1/datasets without a token = ${status}; want 401`);
    // A wrong token is refused with a sentence, and not kept.
    await page.locator("[data-testid=login-token]").fill("shoal_not-a-token");
    await page.locator("[data-testid=login] button[type=submit]").click();
    const alert = (await page.locator("[data-testid=login] [role=alert]").textContent()).trim();
    check(/does not know this token/.test(alert), `wrong token: ${alert}`);
    check((await storage()).session === null, "a refused token was stored");
    await page.screenshot({ path: join(shots, "login.png"), fullPage: true });
  });

  await step("log in with the admin token's login link (/#token=…)", async () => {
    await page.goto(`${base}/datasets?d=tiny#token=${encodeURIComponent(adminToken)}`);
    await page.locator("[data-testid=dataset-counts]").waitFor();
    check(!page.url().includes(adminToken) && !page.url().includes("#"), `the token stayed in the address: ${page.url()}`);
    const who = (await page.locator("[data-testid=caller-name]").textContent()).trim();
    check(/admin/.test(who), `caller shown as "${who}"; want the admin token's name`);
    const st = await storage();
    check(st.session === adminToken, "the token is not in sessionStorage");
    check(st.local === 0 && st.cookie === "", `the token leaked to localStorage (${st.local} keys) or a cookie (${st.cookie})`);
  });

  await step("theme: bubbles and fish move, and stop under prefers-reduced-motion", async () => {
    const anim = () => page.evaluate(() => getComputedStyle(document.querySelector(".bubble")).animationName);
    check((await anim()) === "rise", `bubble animation = ${await anim()}; want rise`);
    check(await page.locator(".fish").count() > 0, "no fish");
    await page.emulateMedia({ reducedMotion: "reduce" });
    check((await anim()) === "none", `bubble animation under reduced motion = ${await anim()}; want none`);
    await page.emulateMedia({ reducedMotion: "no-preference" });
  });

  await step("Datasets: counts, thumbnails, an upload with progress, a new snapshot", async () => {
    await page.goto(`${base}/datasets?d=tiny`);
    const counts = page.locator("[data-testid=dataset-counts]");
    await counts.waitFor();
    for (const l of labels) await counts.locator("th", { hasText: l }).waitFor();
    const thumb = page.locator("[data-testid=samples] img").first();
    await thumb.waitFor();
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll("[data-testid=samples] img")];
      return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    });
    // An empty file beside the image: refused with its reason, the rest
    // imported, and the server still up (an empty upload once crashed it).
    // (Playwright takes either paths or buffers in one call, not both.)
    await page.locator("[data-testid=upload-files]").setInputFiles([
      { name: basename(uploadImage), mimeType: "image/png", buffer: await readFile(uploadImage) },
      { name: "empty.jpg", mimeType: "image/jpeg", buffer: Buffer.alloc(0) },
    ]);
    await page.getByRole("textbox", { name: "label" }).fill("Bag");
    await page.getByRole("button", { name: "Upload" }).click();
    const result = page.locator("[data-testid=upload-result]");
    await result.waitFor();
    const text = await result.textContent();
    check(/^1 added.* 1 rejected$/s.test(text.trim()), `upload result = ${text}; want 1 added, 1 rejected`);
    const refused = await page.locator(".rejections li").first().textContent();
    check(/empty\.jpg: empty file \(0 bytes\)/.test(refused), `rejection = ${refused}; want empty.jpg: empty file (0 bytes)`);
    check((await page.getByRole("progressbar").getAttribute("aria-valuenow")) === "100", "upload progress bar not at 100%");
    // The counts and the samples follow the upload.
    await counts.locator("tr", { hasText: "Bag" }).locator("td", { hasText: "41" }).first().waitFor();
    await page.locator("[data-testid=samples] h4", { hasText: "Bag (51)" }).waitFor();
    await page.getByRole("button", { name: "Take a snapshot" }).click();
    await page.locator("[data-testid=snapshots] td", { hasText: "v2" }).waitFor();
    await page.screenshot({ path: join(shots, "datasets.png"), fullPage: true });
  });

  await step("errors: a refused request reads as a message, not JSON", async () => {
    await page.goto(`${base}/training`);
    await page.locator("[data-testid=train-dataset] option[value=tiny]").waitFor({ state: "attached" });
    await page.locator("[data-testid=train-dataset]").selectOption("tiny");
    const advanced = page.locator("[data-testid=train-advanced]");
    check(!(await advanced.evaluate((d) => d.open)), "the advanced fields are open before asked");
    const imageSize = page.locator("[data-testid=train-image-size]");
    check((await imageSize.inputValue()) === "", `image size shows "${await imageSize.inputValue()}"; want it empty`);
    check((await imageSize.getAttribute("placeholder")) === "28", `image size placeholder = ${await imageSize.getAttribute("placeholder")}; want small-cnn's default 28`);
    // The console knows an architecture's smallest input but not its largest:
    // the server refuses this size.
    await imageSize.fill("1024");
    await page.locator("[data-testid=train-start]").click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    const text = (await alert.textContent()).trim();
    check(/^Invalid request: .*imageSize = 1024/.test(text) && !text.includes("{"), `error shown as: ${text}`);
    await imageSize.fill("");
    await page.getByRole("button", { name: "dismiss" }).click();
    // What the browser refuses itself, in the collapsed advanced fields, opens them.
    const summary = advanced.locator("summary");
    const fraction = page.locator("[data-testid=train-validation-fraction]");
    await summary.click();
    await fraction.fill("0.9");
    await summary.click();
    check(!(await advanced.evaluate((d) => d.open)), "the advanced fields did not close");
    await page.locator("[data-testid=train-start]").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=train-advanced]").open);
    check(await fraction.evaluate((i) => i === document.activeElement && !i.validity.valid), "the invalid validation fraction is not focused");
    check((await page.locator("[data-testid=live-job]").count()) === 0, "a job started with an invalid form");
    await fraction.fill("");
    await summary.click();
  });

  let version = "";
  await step("Training: a job on snapshot 2 streams its epochs live to the charts and completes", async () => {
    await page.locator("[data-testid=train-snapshot] option[value='2']").waitFor({ state: "attached" });
    await page.locator("[data-testid=train-snapshot]").selectOption("2");
    await page.locator("[data-testid=train-epochs]").fill(String(trainEpochs));
    // Shown for the screenshot; everything in it is left to the server's defaults.
    await page.locator("[data-testid=train-advanced] summary").click();
    await page.locator("[data-testid=train-start]").click();
    await page.locator("[data-testid=live-job]").waitFor();
    // Record every (state, epochs charted) pair the page goes through.
    await page.evaluate(() => {
      const seen = (window.__seen = []);
      const record = () => {
        const charts = document.querySelector("[data-testid=job-charts]");
        const state = document.querySelector("[data-testid=job-state]")?.textContent;
        if (charts) seen.push(`${state}:${charts.dataset.epochs}`);
      };
      record();
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.locator("[data-testid=job-state]", { hasText: "succeeded" }).waitFor({ timeout: 180_000 });
    const seen = await page.evaluate(() => window.__seen);
    const epochs = Number(await page.locator("[data-testid=job-charts]").getAttribute("data-epochs"));
    check(epochs === trainEpochs, `epochs charted at the end = ${epochs}; want ${trainEpochs}`);
    const live = seen.filter((s) => {
      const [state, n] = s.split(":");
      return state === "running" && Number(n) >= 1 && Number(n) < trainEpochs;
    });
    check(live.length > 0, `never saw the chart part-way while running; saw ${[...new Set(seen)].join(" ")}`);
    console.log(`e2e:      the chart grew live through ${new Set(live).size} of ${trainEpochs - 1} part-way states`);
    const points = await page.locator("[data-testid=job-charts] g[data-series=validation]").first().getAttribute("data-points");
    check(points === String(trainEpochs), `validation loss points = ${points}; want ${trainEpochs}`);
    const rates = await page.locator("[data-testid=job-charts] g[data-series='learning rate']").getAttribute("data-points");
    check(rates === String(trainEpochs), `learning-rate points = ${rates}; want ${trainEpochs}`);
    const spec = (await page.locator("[data-testid=job-spec]").textContent()).trim();
    check(/tiny v2 · small-cnn · .*12 epochs · batch 64 · Adam · cosine lr 0\.001 · augmentation: horizontal flip/.test(spec), `job header: ${spec}`);
    const registered = (await page.locator("[data-testid=job-registered]").textContent()).trim();
    const m = /tiny v(\d+)/.exec(registered);
    check(m, `registered: ${registered}`);
    version = m[1];
    check(version === "2", `registered version ${version}; want 2`);
    await page.screenshot({ path: join(shots, "training.png"), fullPage: true });
  });

  await step(`Models: promote tiny v${version} to production`, async () => {
    await page.locator("[data-testid=job-registered] a").click();
    await page.locator("[data-testid=version-detail] .heatmap").waitFor();
    const row = page.locator(`[data-testid=versions] tr[data-version='${version}']`);
    await row.locator(`[data-testid=promote-${version}]`).click();
    await row.locator(".tag", { hasText: "production" }).waitFor();
    check(await page.locator("[data-testid=versions] tr[data-version='1'] .tag").count() === 0, "v1 still has an alias");
    await page.screenshot({ path: join(shots, "models.png"), fullPage: true });
  });

  await step(`Predict: answers with tiny v${version} once Inference has swapped it in`, async () => {
    await page.goto(`${base}/`);
    await page.locator("[data-testid=predict-model] option[value=tiny]").waitFor({ state: "attached" });
    const deadline = Date.now() + 30_000;
    let got;
    for (;;) {
      got = await predict();
      if (got.version.startsWith(`tiny v${version} `) || Date.now() > deadline) break;
      // Inference loads and warms the promoted version in the background.
      await page.waitForTimeout(250);
    }
    check(got.version.startsWith(`tiny v${version} `), `answered by "${got.version}"; want tiny v${version}`);
    await page.locator(".species").waitFor();
    await page.screenshot({ path: join(shots, "predict.png"), fullPage: true });
  });

  await step("a read-only token browses and sees no Promote, Delete, upload or training form", async () => {
    await page.locator("[data-testid=logout]").click();
    await page.locator("[data-testid=caller-name]", { hasText: "not logged in" }).waitFor();
    check((await storage()).session === null, "the token stayed after logging out");
    await page.goto(`${base}/models?m=tiny`);
    await page.locator("[data-testid=login-token]").fill(viewerToken);
    await page.locator("[data-testid=login] button[type=submit]").click();
    await page.locator("[data-testid=versions] tr[data-version='1']").waitFor();
    await page.locator("[data-testid=version-detail] .heatmap").waitFor();
    const who = (await page.locator("[data-testid=caller-name]").textContent()).trim();
    const scopes = (await page.locator("[data-testid=caller] .scope").allTextContents()).join(",");
    check(who === "viewer" && scopes === "read", `caller shown as ${who} with ${scopes}; want viewer with read`);
    check(await page.locator("[data-testid^=promote-]").count() === 0, "a read-only token sees a Promote button");
    check(await page.getByRole("button", { name: "Delete" }).count() === 0, "a read-only token sees a Delete button");
    // The server refuses the promotion too: 403, the token is known.
    const status = await page.evaluate(() => fetch("/v1/models/tiny/aliases/production", {
      method: "PUT", headers: { Authorization: `Bearer ${sessionStorage.getItem("shoal.token")}` }, body: JSON.stringify({ version: "1" }),
    }).then((r) => r.status));
    check(status === 403, `PUT the production alias with a read-only token = ${status}; want 403`);
    await page.locator("nav a", { hasText: "Datasets" }).click();
    await page.locator("[data-testid=dataset-counts]").waitFor();
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll("[data-testid=samples] img")];
      return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith("blob:"));
    });
    check(await page.locator("[data-testid=upload-files]").count() === 0, "a read-only token sees the upload form");
    check(await page.getByRole("button", { name: "Take a snapshot" }).count() === 0, "a read-only token sees the snapshot form");
    await page.locator("nav a", { hasText: "Training" }).click();
    await page.locator("[data-testid=jobs]").waitFor();
    check(await page.locator("[data-testid=train-start]").count() === 0, "a read-only token sees the training form");
  });

  await step("API reference: /openapi.json in Swagger UI, loaded on demand, under the Content-Security-Policy", async () => {
    const served = await page.evaluate(() => fetch("/openapi.json").then((r) => r.json()));
    const operations = Object.entries(served.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    const violationsBefore = cspViolations.length;
    check(!assetsLoaded.some((u) => /ApiReference/.test(u)), `the reference's chunk was loaded before the API page: ${assetsLoaded.filter((u) => /ApiReference/.test(u))}`);
    await page.locator("nav a", { hasText: "API" }).click();
    await page.locator("[data-testid=api-page]").waitFor();
    check(page.url() === `${base}/api`, `the API link went to ${page.url()}`);
    await page.locator(".api-reference .opblock").first().waitFor();
    const chunks = assetsLoaded.filter((u) => /\/assets\/ApiReference-.*\.(js|css)$/.test(u));
    check(chunks.some((u) => u.endsWith(".js")) && chunks.some((u) => u.endsWith(".css")), `the reference's own script and stylesheet were not fetched: ${chunks}`);
    const shown = await page.locator(".api-reference .opblock").evaluateAll((ops) => ops.map((o) =>
      `${o.querySelector(".opblock-summary-method").textContent} ${o.querySelector(".opblock-summary-path").textContent.replace(/\u200b/g, "")}`));
    check(shown.length === operations.length && operations.length > 30, `the reference shows ${shown.length} operations; /openapi.json has ${operations.length}`);
    const missing = operations.filter((o) => !shown.includes(o));
    check(missing.length === 0, `operations of /openapi.json not shown: ${missing.join(", ")}`);
    // The routes generated from the contracts, and those written by hand beside them.
    for (const want of ["POST /v1/models/{model}:predict", "GET /v1/jobs/{jobId}:watch", "POST /predict", "GET /v2/health/ready", "POST /v2/models/{name}/infer"]) {
      check(shown.includes(want), `${want} is not listed`);
    }
    // The page's filter narrows Swagger UI's list; an operation opens with its parameters.
    await page.locator("[data-testid=api-filter]").fill("jobs/{jobId}:watch");
    await page.waitForFunction(() => document.querySelectorAll(".api-reference .opblock").length === 1);
    const watch = page.locator("#operations-TrainerService-TrainerService_WatchJob");
    await watch.locator(".opblock-summary-control").click();
    await watch.getByText("afterSequence").waitFor();
    check(page.url().endsWith("/api#/TrainerService/TrainerService_WatchJob"), `the opened operation's link is ${page.url()}`);
    await page.screenshot({ path: join(shots, "api.png") });
    // Try it out calls the server with the logged-in token, and shows the answer.
    await page.locator("[data-testid=api-filter]").fill("/v1/caller");
    const caller = page.locator("#operations-AuthService-AuthService_GetCaller");
    await caller.locator(".opblock-summary-control").click();
    await caller.getByRole("button", { name: "Try it out" }).click();
    await caller.getByRole("button", { name: "Execute" }).click();
    await caller.locator(".live-responses-table .response-col_description", { hasText: "viewer" }).waitFor();
    check(!(await caller.textContent()).includes(viewerToken), "the token is shown on the page");
    // The messages, with their fields. Their list is virtual: scroll to the one wanted.
    await page.locator("[data-testid=api-filter]").fill("");
    const model = page.locator(".api-reference #model-v1WatchJobResponse");
    await page.locator(".api-reference section.models").scrollIntoViewIfNeeded();
    for (let i = 0; i < 200 && (await model.count()) === 0; i++) await page.mouse.wheel(0, 400);
    await model.locator(".model-box-control").click();
    await model.getByText("sequence", { exact: true }).first().waitFor();
    const late = cspViolations.slice(violationsBefore);
    check(late.length === 0, `Content-Security-Policy violations on the API page: ${late.join("; ")}`);
  });

  await step("the Kraken wakes after 20 clicks on the title", async () => {
    const title = page.locator("[data-testid=title]");
    for (let i = 0; i < 19; i++) await title.click();
    check(await page.locator("[data-testid=kraken]").count() === 0, "the Kraken woke before 20 clicks");
    await title.click();
    await page.locator("[data-testid=kraken]").waitFor();
    await page.waitForTimeout(900); // let it surface for the picture
    await page.screenshot({ path: join(shots, "kraken.png") });
  });

  check(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join("; ")}`);
  check(cspViolations.length === 0, `Content-Security-Policy violations: ${cspViolations.join("; ")}`);
  check(checkedResponses > 20, `only ${checkedResponses} responses had their headers checked`);
  check(headerProblems.length === 0, `responses without the security headers: ${headerProblems.slice(0, 10).join("; ")}`);
  console.log(`e2e: ok  no CSP violation; security headers on all ${checkedResponses} responses of the server`);
} catch (e) {
  failed = true;
  console.error(`e2e: FAIL ${e.stack ?? e}`);
  if (pageErrors.length) console.error(`e2e: page errors: ${pageErrors.join("; ")}`);
  if (cspViolations.length) console.error(`e2e: CSP violations: ${cspViolations.join("; ")}`);
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`e2e: the page at the failure: ${join(shots, "failure.png")}`);
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
