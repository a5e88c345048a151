// The SDK against a live `shoal serve` with auth on: folder uploads placed
// as the CLI places them, a training job followed through cut connections,
// predictions compared with REST /predict, tokens and scopes, typed errors,
// and the example script. One server serves the file; scripts/test-typescript.sh
// runs it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ShoalClient, ShoalError, ok } from "@shoal/client/node";
import { CuttingProxy, Server, freePort } from "./harness.mjs";

const quote = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

let server;
let tmp = "";
let demo = ""; // the Fashion-MNIST demo tree, split/Label/file
let small = ""; // a few of its images per label, laid out the same

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "shoal-tssdk-"));
  server = await Server.start(join(tmp, "server"));
  demo = join(tmp, "demo");
  await server.cli(["demo-data", "--out", demo]);
  small = join(tmp, "small");
  for (const [split, n] of [["train", 30], ["test", 6]]) {
    for (const [label, paths] of Object.entries(await demoImages(split, n))) {
      await mkdir(join(small, split, label), { recursive: true });
      for (const p of paths) await copyFile(p, join(small, split, label, basename(p)));
    }
  }
});

after(async () => {
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const admin = (baseUrl = server.url) => new ShoalClient({ baseUrl, token: server.adminToken });

// demoImages lists the first n images of each label of a demo split:
// {label: [paths]}.
async function demoImages(split, n) {
  const out = {};
  for (const label of (await readdir(join(demo, split))).sort()) {
    out[label] = (await readdir(join(demo, split, label))).filter((f) => f.endsWith(".png")).sort().slice(0, n)
      .map((f) => join(demo, split, label, f));
  }
  return out;
}

async function rejects(promise, code, status) {
  const err = await promise.then(() => assert.fail(`resolved; want ShoalError ${code}`), (e) => e);
  assert.ok(err instanceof ShoalError, `threw ${err}; want ShoalError ${code}`);
  assert.equal(err.code, code, err.message);
  if (status !== undefined) assert.equal(err.status, status, err.message);
  return err;
}

describe("uploadDir", () => {
  it("counts, rejects and skips a split/Label/file folder; nothing is stored twice", async () => {
    const c = admin();
    const folder = await mkdtemp(join(tmp, "up-"));
    let files = 0;
    for (const [label, paths] of Object.entries(await demoImages("train", 2))) {
      await mkdir(join(folder, "train", label), { recursive: true });
      for (const p of paths) await copyFile(p, join(folder, "train", label, basename(p)));
      files += paths.length;
    }
    await writeFile(join(folder, "train", "Bag", "broken.png"), "not an image");
    await writeFile(join(folder, "README.md"), "top-level: ignored");
    await writeFile(join(folder, "train", ".DS_Store"), "hidden: ignored");
    await writeFile(join(folder, "train", "notes.txt"), "outside the layout: skipped");
    await ok(c.api.POST("/v1/datasets", { body: { name: "up-split" } }));

    const fractions = [];
    const got = await c.uploadDir("up-split", folder, { onProgress: (f) => fractions.push(f) });
    assert.deepEqual([got.counts.seen, got.counts.added, got.counts.rejected], [files + 1, files, 1]);
    assert.deepEqual(got.rejections.map((r) => r.path), ["train/Bag/broken.png"]);
    assert.deepEqual(got.skipped, ["train/notes.txt"]);
    assert.equal(fractions.at(-1), 1);

    const again = await c.uploadDir("up-split", folder);
    assert.deepEqual([again.counts.added, again.counts.duplicates], [0, files]);
    const stats = await ok(c.api.GET("/v1/datasets/{dataset}/stats", { params: { path: { dataset: "up-split" } } }));
    assert.equal(stats.imageCount, files);
  });

  it("places a Label/file folder with a test fraction as the CLI does", async () => {
    const c = admin();
    const folder = await mkdtemp(join(tmp, "up-"));
    for (const [label, paths] of Object.entries(await demoImages("train", 8))) {
      await mkdir(join(folder, label));
      for (const p of paths) await copyFile(p, join(folder, label, basename(p)));
    }
    for (const name of ["up-sdk", "up-cli"]) await ok(c.api.POST("/v1/datasets", { body: { name } }));
    await c.uploadDir("up-sdk", folder, { split: "train", testFraction: 0.3 });
    await server.cli(["dataset", "upload", "up-cli", folder, "--split", "train", "--test-fraction", "0.3"]);

    const placed = async (dataset) => {
      const { images = [] } = await ok(c.api.GET("/v1/datasets/{dataset}/images", { params: { path: { dataset }, query: { pageSize: 1000 } } }));
      return images.map((i) => `${i.split} ${i.label} ${i.fileName}`).sort();
    };
    const sdk = await placed("up-sdk");
    assert.deepEqual(sdk, await placed("up-cli"));
    assert.deepEqual(new Set(sdk.map((s) => s.split(" ")[0])), new Set(["SPLIT_TRAIN", "SPLIT_TEST"]));
  });

  it("refuses a folder in the wrong layout before sending anything", async () => {
    const c = admin();
    const folder = await mkdtemp(join(tmp, "up-"));
    await mkdir(join(folder, "Bag"));
    await copyFile((await demoImages("train", 1)).Bag[0], join(folder, "Bag", "1.png"));
    await ok(c.api.POST("/v1/datasets", { body: { name: "up-wrong" } }));
    const err = await rejects(c.uploadDir("up-wrong", folder), "INVALID_ARGUMENT");
    assert.match(err.message, /holds no images laid out split\/Label\/file.*1 files at Label\/file.*split: "train"/);
    const stats = await ok(c.api.GET("/v1/datasets/{dataset}/stats", { params: { path: { dataset: "up-wrong" } } }));
    assert.equal(stats.imageCount, 0);
  });

  it("says NOT_FOUND for a dataset that does not exist", async () => {
    await rejects(admin().uploadDir("no-such-dataset", small), "NOT_FOUND", 404);
  });
});

describe("a model trained here, its job followed through cut connections", () => {
  const model = "tsfashion";
  let proxy;
  let jobId = "";
  const seen = [];
  const reconnects = [];
  let images = [];

  before(async () => {
    const c = admin();
    await ok(c.api.POST("/v1/datasets", { body: { name: model } }));
    await c.uploadDir(model, small);
    proxy = await CuttingProxy.start(server.http);
    const spec = { dataset: model, model, epochs: 3, seed: 1, promotion: "PROMOTION_POLICY_ALWAYS" };
    jobId = (await ok(c.api.POST("/v1/jobs", { body: { spec } }))).job.id;
    // Cut every connection after the first epoch (two to come) and after
    // the last, where the events next (evaluation, registration, the final
    // state) are all kept in the history, so one skipped on resuming shows.
    for await (const ev of admin(proxy.url).watchJob(jobId, { onReconnect: (err, seq) => reconnects.push([err, seq]) })) {
      seen.push(ev);
      if (ev.epoch && [1, 3].includes(ev.epoch.epoch)) proxy.cut();
    }
    images = Object.values(await demoImages("test", 1)).map((paths) => paths[0]);
    // Inference loads a promoted version on its own; wait until it serves.
    const end = Date.now() + 60_000;
    for (;;) {
      try {
        await c.predictFiles(images.slice(0, 1), { model });
        break;
      } catch (err) {
        if (!(err instanceof ShoalError) || !["NOT_FOUND", "UNAVAILABLE"].includes(err.code) || Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(() => proxy?.close());

  it("follows the job to its end, resuming after each cut with no event twice", async () => {
    assert.equal(seen.at(-1).state?.state, "JOB_STATE_SUCCEEDED", JSON.stringify(seen.at(-1)));
    assert.ok(reconnects.length >= 1, "no reconnection after cutting mid-training");
    for (const [err] of reconnects) assert.equal(err.code, "UNAVAILABLE", err.message);
    assert.ok(proxy.connections >= reconnects.length + 1, `${proxy.connections} connections`);
    const seqs = seen.map((ev) => ev.sequence);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), "sequences repeat or go back");
    assert.ok(seqs.at(-1) > reconnects.at(-1)[1], "no event after the last reconnection");

    // Nothing lost: the job's stored history, replayed now, is what the cut
    // watch saw (progress excepted: only its latest is kept).
    const lasting = (events) => events.filter((ev) => !ev.progress);
    const replay = [];
    for await (const ev of admin().watchJob(jobId)) replay.push(ev);
    assert.deepEqual(lasting(seen), lasting(replay));
    assert.deepEqual(lasting(seen).filter((ev) => ev.epoch).map((ev) => ev.epoch.epoch), [1, 2, 3]);
    // A watch from a sequence number yields only what comes after it.
    const from = seqs[2];
    const rest = [];
    for await (const ev of admin().watchJob(jobId, { afterSequence: from })) rest.push(ev.sequence);
    assert.deepEqual(rest, replay.map((ev) => ev.sequence).filter((s) => s > from));
  });

  it("predicts as REST /predict does, from bytes, Blobs and files alike", async () => {
    const c = admin();
    const resp = await c.predictFiles(images, { model, topK: 5 });
    assert.deepEqual([resp.model, resp.version, resp.results.length], [model, 1, images.length]);
    for (const [i, path] of images.entries()) {
      const form = new FormData();
      form.set("model", model);
      form.set("top_k", "5");
      form.set("file", new Blob([await readFile(path)]), basename(path));
      const rest = await (await fetch(`${server.url}/predict`, { method: "POST", body: form })).json();
      assert.equal(rest.version, resp.version);
      const f = Math.fround;
      assert.deepEqual(resp.results[i].labels.map((l) => [l.label, f(l.probability)]), rest.top_k.map((l) => [l.label, f(l.probability)]), path);
    }
    const bytes = await readFile(images[0]);
    for (const input of [new Uint8Array(bytes), new Blob([bytes]), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)]) {
      assert.deepEqual((await c.predict(input, { model, topK: 5 })).results[0], resp.results[0]);
    }
  });

  it("carries the token: anonymous callers predict but read nothing; a scope missing is 403", async () => {
    const anon = new ShoalClient({ baseUrl: server.url, token: null });
    assert.equal((await anon.predictFiles(images.slice(0, 1), { model })).model, model);
    await rejects(ok(anon.api.GET("/v1/models")), "UNAUTHENTICATED", 401);
    await rejects(anon.watchJob(jobId).next(), "UNAUTHENTICATED", 401);
    const bad = new ShoalClient({ baseUrl: server.url, token: "not-a-token" });
    await rejects(bad.predictFiles(images.slice(0, 1), { model }), "UNAUTHENTICATED", 401);

    const made = await ok(admin().api.POST("/v1/tokens", { body: { name: "ts-reader", scopes: ["SCOPE_PREDICT", "SCOPE_READ"] } }));
    const heard = [];
    const reader = new ShoalClient({ baseUrl: server.url, token: () => made.secret, onResponse: (status, token) => heard.push([status, token]) });
    const events = [];
    for await (const ev of reader.watchJob(jobId)) events.push(ev);
    assert.ok(events.length > 0);
    const err = await rejects(reader.uploadDir(model, small), "PERMISSION_DENIED", 403);
    assert.match(err.reason, /write/);
    assert.deepEqual(heard, [[200, made.secret], [403, made.secret]]);
  });

  it("throws ShoalError with the HTTP status and the server's reason", async () => {
    const c = admin();
    let err = await rejects(c.predictFiles(images.slice(0, 1), { model: "nope" }), "NOT_FOUND", 404);
    assert.match(err.reason, /nope/);
    err = await rejects(c.predict(new TextEncoder().encode("not an image"), { model }), "INVALID_ARGUMENT", 400);
    assert.match(err.message, /not an image/);
    await rejects(c.watchJob("6f1e1a49-0c1e-4c5e-9d7e-000000000000").next(), "NOT_FOUND", 404);
    await rejects(ok(c.api.GET("/v1/models/{model}/versions/{version}", { params: { path: { model, version: 99 } } })), "NOT_FOUND", 404);
    await rejects(c.predict([], {}), "INVALID_ARGUMENT");
    // A server that cannot be reached: UNAVAILABLE, status 0.
    const closed = `http://127.0.0.1:${await freePort()}`;
    await rejects(new ShoalClient({ baseUrl: closed }).predictFiles(images.slice(0, 1), { model }), "UNAVAILABLE", 0);
  });

  it("runs the example", async () => {
    const script = join(dirname(fileURLToPath(import.meta.url)), "..", "examples", "quickstart.mjs");
    const env = { ...process.env, SHOAL_URL: server.url, SHOAL_TOKEN: server.adminToken };
    const { stdout } = await promisify(execFile)(process.execPath, [script, model, ...images.slice(0, 2)], { env, timeout: 60_000 });
    for (const path of images.slice(0, 2)) assert.match(stdout, new RegExp(`^${quote(path)}: \\S.* 0\\.\\d{4}`, "m"));
    assert.match(stdout, new RegExp(`^answered by ${model} v1$`, "m"));
    assert.match(stdout, new RegExp(`^${model} v1: small-cnn, test accuracy `, "m"));
    assert.match(stdout, /^job SUCCEEDED$/m);
    assert.match(stdout, /^not found \(HTTP 404\): /m);
  });
});
