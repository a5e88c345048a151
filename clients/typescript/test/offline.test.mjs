// The SDK's pieces that need no server: errors, the stream reader, upload
// bodies and batches, the token on every kind of call, and folder layouts.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  ShoalClient, ShoalError, base64, batches, ok, pathShare, readNDJSON, scanFolder, toShoalError, uploadBody,
} from "@shoal/client/node";

function streamOf(chunks, status = 200) {
  const enc = new TextEncoder();
  return new Response(new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(typeof ch === "string" ? enc.encode(ch) : ch);
      c.close();
    },
  }), { status });
}

async function collect(gen) {
  const out = [];
  for await (const v of gen) out.push(v);
  return out;
}

describe("toShoalError", () => {
  const cases = [
    { name: "the API's JSON", body: { code: 3, message: "epochs must be positive", details: [] }, status: 400, code: "INVALID_ARGUMENT", message: "epochs must be positive" },
    { name: "the API's JSON as text", body: '{"code":12,"message":"not implemented","details":[]}', status: 501, code: "UNIMPLEMENTED", message: "not implemented" },
    { name: "a stream's error line", body: '{"error":{"code":16,"message":"needs a token","details":[]}}\n', status: 401, code: "UNAUTHENTICATED", message: "needs a token" },
    { name: "an empty message", body: { code: 14, message: "" }, status: 503, code: "UNAVAILABLE", message: "Service unavailable" },
    { name: "plain text from a proxy", body: "request body too large", status: 413, code: "UNKNOWN", message: "request body too large" },
    { name: "an HTML error page", body: "<html><body>Bad Gateway</body></html>", status: 502, code: "UNKNOWN", message: "HTTP 502" },
    { name: "nothing at all", body: undefined, status: 500, code: "UNKNOWN", message: "HTTP 500" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = toShoalError(c.body, c.status, 3);
      assert.ok(e instanceof ShoalError && e instanceof Error);
      assert.deepEqual([e.name, e.code, e.status, e.message, e.retryAfter], ["ShoalError", c.code, c.status, c.message, 3]);
    });
  }
});

describe("readNDJSON", () => {
  const cases = [
    { name: "one line per chunk", chunks: ['{"result":{"n":1}}\n', '{"result":{"n":2}}\n'], want: [{ n: 1 }, { n: 2 }] },
    { name: "lines split across chunks", chunks: ['{"resu', 'lt":{"n":1}}\n{"result":', '{"n":2}}\n'], want: [{ n: 1 }, { n: 2 }] },
    { name: "no newline after the last line", chunks: ['{"result":{"n":1}}\n{"result":{"n":2}}'], want: [{ n: 1 }, { n: 2 }] },
    { name: "blank lines and CRLF", chunks: ['\r\n{"result":{"n":1}}\r\n\n'], want: [{ n: 1 }] },
    { name: "an empty stream", chunks: [], want: [] },
  ];
  for (const c of cases) {
    it(c.name, async () => assert.deepEqual(await collect(readNDJSON(streamOf(c.chunks))), c.want));
  }

  it("keeps multi-byte UTF-8 whole when a chunk boundary cuts it", async () => {
    const bytes = new TextEncoder().encode('{"result":{"label":"Gold Fish é"}}\n');
    const cut = bytes.length - 5;
    assert.deepEqual(await collect(readNDJSON(streamOf([bytes.slice(0, cut), bytes.slice(cut)]))), [{ label: "Gold Fish é" }]);
  });

  it("yields the results before an error line, then throws it", async () => {
    const got = [];
    const err = await (async () => {
      for await (const v of readNDJSON(streamOf(['{"result":{"n":1}}\n', '{"error":{"code":5,"message":"job \\"x\\" not found"}}\n']))) got.push(v);
    })().catch((e) => e);
    assert.deepEqual(got, [{ n: 1 }]);
    assert.deepEqual([err.code, err.message], ["NOT_FOUND", 'job "x" not found']);
  });

  it("reports a malformed line and a connection lost mid-stream", async () => {
    const bad = await collect(readNDJSON(streamOf(["not json\n"]))).catch((e) => e);
    assert.match(bad.message, /malformed stream line: not json/);
    const lost = new Response(new ReadableStream({
      pull(c) {
        c.enqueue(new TextEncoder().encode('{"result":{"n":1}}\n'));
        c.error(new TypeError("terminated"));
      },
    }));
    const err = await collect(readNDJSON(lost)).catch((e) => e);
    assert.deepEqual([err.code, err.status], ["UNAVAILABLE", 0]);
  });
});

describe("uploads", () => {
  it("uploadBody sends the header, then one message per image", async () => {
    const files = [new File([new Uint8Array([1, 2, 3])], "a.png"), new File([new Uint8Array([255])], "b.png")];
    const body = await uploadBody("fish", { files, split: "SPLIT_TEST", label: "Gold Fish" });
    assert.deepEqual((await body.text()).trim().split("\n").map((l) => JSON.parse(l)), [
      { header: { dataset: "fish" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "a.png", content: "AQID" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "b.png", content: "/w==" } },
    ]);
  });

  it("uploadBody cuts an archive into 1 MiB chunks, naming it in the first", async () => {
    const bytes = new Uint8Array((1 << 20) + 10).map((_, i) => i % 251);
    const got = (await (await uploadBody("fish", { archive: new File([bytes], "photos.tar.gz") })).text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(got.length, 3);
    assert.deepEqual([got[1].archiveChunk.fileName, got[2].archiveChunk.fileName], ["photos.tar.gz", undefined]);
    assert.equal(got.slice(1).map((m) => atob(m.archiveChunk.data)).join("").length, bytes.length);
  });

  it("base64 encodes inputs larger than one call's arguments", () => {
    assert.equal(atob(base64(new Uint8Array(300_000).fill(65))).length, 300_000);
  });

  const cases = [
    { name: "all in one", sizes: [1, 2, 3], max: 10, want: [[1, 2, 3]] },
    { name: "split at the limit", sizes: [4, 4, 4], max: 8, want: [[4, 4], [4]] },
    { name: "a big file alone", sizes: [1, 20, 1], max: 8, want: [[1], [20], [1]] },
    { name: "nothing", sizes: [], max: 8, want: [] },
  ];
  for (const c of cases) {
    it(`batches: ${c.name}`, () => {
      assert.deepEqual(batches(c.sizes.map((n) => new Blob([new Uint8Array(n)])), c.max).map((b) => b.map((x) => x.size)), c.want);
    });
  }

  it("uploadImages sums every request's outcome and reports overall progress", async () => {
    const sent = [];
    class Recording extends ShoalClient {
      async sendUpload(body, onProgress) {
        const msgs = (await body.text()).trim().split("\n").map((l) => JSON.parse(l));
        sent.push(msgs.filter((m) => m.file).map((m) => m.file.fileName));
        onProgress(0.5);
        return { counts: { seen: 1, added: 1, duplicates: 0, rejected: 0, conflicts: 0 }, rejections: [{ path: "x", reason: "y" }] };
      }
    }
    const big = (name) => new File([new Uint8Array(10 << 10)], name);
    const progress = [];
    const r = await new Recording({ baseUrl: "http://shoal.invalid" }).uploadImages("fish",
      { files: [big("a.png"), big("b.png")], split: "SPLIT_TRAIN", label: "Bag" },
      { onProgress: (p) => progress.push(p), maxBatchBytes: 16 << 10 });
    assert.deepEqual(sent, [["a.png"], ["b.png"]]);
    assert.deepEqual(r.counts, { seen: 2, added: 2, duplicates: 0, rejected: 0, conflicts: 0 });
    assert.equal(r.rejections.length, 2);
    assert.deepEqual(progress, [0.25, 0.75, 1]);
  });
});

describe("ShoalClient", () => {
  function fake(status = 200, body = { datasets: [] }) {
    const calls = [];
    const fetch = async (req) => {
      calls.push({ url: req.url, method: req.method, authorization: req.headers.get("Authorization") });
      return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", "Retry-After": "7" } });
    };
    return { calls, fetch };
  }

  it("sends the token, read at each call, on typed calls and raw ones, and tells onResponse", async () => {
    const { calls, fetch } = fake();
    let token = "one";
    const heard = [];
    const c = new ShoalClient({ baseUrl: "http://shoal.test:8080/", token: () => token, fetch, onResponse: (s, t) => heard.push([s, t]) });
    await ok(c.api.GET("/v1/datasets"));
    token = "";
    await c.fetch("/v1/jobs/j:watch");
    assert.deepEqual(calls, [
      { url: "http://shoal.test:8080/v1/datasets", method: "GET", authorization: "Bearer one" },
      { url: "http://shoal.test:8080/v1/jobs/j:watch", method: "GET", authorization: null },
    ]);
    assert.deepEqual(heard, [[200, "one"], [200, undefined]]);
  });

  it("takes $SHOAL_URL and $SHOAL_TOKEN by default, and null for no token", async () => {
    process.env.SHOAL_URL = "http://from-env:1234";
    process.env.SHOAL_TOKEN = "env-token";
    try {
      assert.deepEqual([new ShoalClient().baseUrl, new ShoalClient().token()], ["http://from-env:1234", "env-token"]);
      assert.equal(new ShoalClient({ token: null }).token(), undefined);
    } finally {
      delete process.env.SHOAL_URL;
      delete process.env.SHOAL_TOKEN;
    }
  });

  it("ok throws the server's error with its status and Retry-After", async () => {
    const { fetch } = fake(429, { code: 8, message: "rate limit", details: [] });
    const err = await ok(new ShoalClient({ baseUrl: "http://x", fetch }).api.GET("/v1/datasets")).catch((e) => e);
    assert.deepEqual([err.code, err.status, err.reason, err.retryAfter], ["RESOURCE_EXHAUSTED", 429, "rate limit", 7]);
  });

  it("makes a refused connection UNAVAILABLE, and lets an abort through", async () => {
    const refused = async () => { throw new TypeError("fetch failed"); };
    const c = new ShoalClient({ baseUrl: "http://x", fetch: refused });
    for (const call of [ok(c.api.GET("/v1/datasets")), c.fetch("/v1/datasets")]) {
      const err = await call.catch((e) => e);
      assert.deepEqual([err.code, err.status], ["UNAVAILABLE", 0]);
      assert.match(err.message, /fetch failed/);
    }
    const aborted = async () => { throw new DOMException("aborted", "AbortError"); };
    const err = await ok(new ShoalClient({ baseUrl: "http://x", fetch: aborted }).api.GET("/v1/datasets")).catch((e) => e);
    assert.equal(err.name, "AbortError");
  });

  it("predict needs a model: the REST route names it", async () => {
    const err = await new ShoalClient({ baseUrl: "http://x" }).predict(new Uint8Array([1]), {}).catch((e) => e);
    assert.equal(err.code, "INVALID_ARGUMENT");
  });
});

describe("folder layouts", () => {
  it("place files as the CLI does: hidden and top-level passed over, others skipped", async () => {
    const root = await mkdtemp(join(tmpdir(), "shoal-layout-"));
    try {
      for (const f of ["train/Cat/1.png", "test/Dog/2.png", "train/.git/x", "train/Cat/.DS_Store", "README", "train/notes.txt", "extra/Cat/3.png"]) {
        await mkdir(join(root, f, ".."), { recursive: true });
        await writeFile(join(root, f), "x");
      }
      await symlink(join(root, "gone.png"), join(root, "train", "Cat", "broken.png"));
      const scan = await scanFolder(root);
      assert.deepEqual(scan.files.map((f) => [f.rel, f.split, f.label, f.name]), [
        ["test/Dog/2.png", "SPLIT_TEST", "Dog", "2.png"],
        ["train/Cat/1.png", "SPLIT_TRAIN", "Cat", "1.png"],
      ]);
      assert.deepEqual(scan.skipped, ["extra/Cat/3.png", "train/notes.txt"]);
      assert.deepEqual(scan.refused, [{ path: "train/Cat/broken.png", reason: "broken symlink" }]);
      const err = await scanFolder(join(root, "train", "Cat"), { split: "train", testFraction: 1 }).catch((e) => e);
      assert.match(err.message, /want a share in \[0, 1\)/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("pathShare hashes a path as the CLI does", () => {
    // The first 8 bytes of sha256("Cat/1.png") >> 11, over 2^53: what
    // internal/upload's pathShare and the Python SDK's path_share give.
    assert.equal(pathShare("Cat/1.png"), 0.3616178361173161);
  });
});
