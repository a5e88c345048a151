import { describe, expect, it } from "vitest";
import { readNDJSON } from "./ndjson";
import { ApiError } from "./errors";

// streamOf answers a Response whose body arrives in exactly these chunks.
function streamOf(chunks: string[], status = 200): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
  return new Response(body, { status });
}

async function collect<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of gen) out.push(v);
  return out;
}

describe("readNDJSON", () => {
  const cases: { name: string; chunks: string[]; want: unknown[] }[] = [
    { name: "one line per chunk", chunks: ['{"result":{"n":1}}\n', '{"result":{"n":2}}\n'], want: [{ n: 1 }, { n: 2 }] },
    { name: "lines split across chunks", chunks: ['{"resu', 'lt":{"n":1}}\n{"result":', '{"n":2}}\n'], want: [{ n: 1 }, { n: 2 }] },
    { name: "several lines in one chunk", chunks: ['{"result":{"n":1}}\n{"result":{"n":2}}\n{"result":{"n":3}}\n'], want: [{ n: 1 }, { n: 2 }, { n: 3 }] },
    { name: "no newline after the last line", chunks: ['{"result":{"n":1}}\n{"result":{"n":2}}'], want: [{ n: 1 }, { n: 2 }] },
    { name: "blank lines and CRLF", chunks: ['\r\n{"result":{"n":1}}\r\n\n'], want: [{ n: 1 }] },
    { name: "an empty stream", chunks: [], want: [] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      expect(await collect(readNDJSON(streamOf(c.chunks)))).toEqual(c.want);
    });
  }

  it("keeps multi-byte UTF-8 whole when a chunk boundary cuts it", async () => {
    const bytes = new TextEncoder().encode('{"result":{"label":"Gold Fish é"}}\n');
    const cut = bytes.length - 5; // inside "é"'s two bytes or just after
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, cut));
        c.enqueue(bytes.slice(cut));
        c.close();
      },
    });
    expect(await collect(readNDJSON(new Response(body)))).toEqual([{ label: "Gold Fish é" }]);
  });

  it("yields the results before an error line, then throws the error's message", async () => {
    const got: unknown[] = [];
    const gen = readNDJSON(streamOf(['{"result":{"n":1}}\n', '{"error":{"code":5,"message":"job \\"x\\" not found","details":[]}}\n']));
    await expect((async () => { for await (const v of gen) got.push(v); })()).rejects.toMatchObject({
      name: "ApiError", code: "NOT_FOUND", message: 'job "x" not found',
    });
    expect(got).toEqual([{ n: 1 }]);
  });

  it("throws the JSON error of a failed response", async () => {
    const resp = new Response('{"code":3,"message":"job_id is required","details":[]}', { status: 400 });
    const err = await collect(readNDJSON(resp)).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: "INVALID_ARGUMENT", message: "job_id is required" });
  });

  it("reports a malformed line instead of a parse exception", async () => {
    const err = await collect(readNDJSON(streamOf(["not json\n"]))).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/malformed stream line: not json/);
  });
});
