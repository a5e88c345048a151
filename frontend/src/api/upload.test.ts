import { describe, expect, it } from "vitest";
import { base64, batches, uploadBody, uploadImages } from "./upload";

async function lines(b: Blob): Promise<unknown[]> {
  return (await b.text()).trim().split("\n").map((l) => JSON.parse(l));
}

describe("uploadBody", () => {
  it("sends the header, then one message per image", async () => {
    const files = [new File([new Uint8Array([1, 2, 3])], "a.png"), new File([new Uint8Array([255])], "b.png")];
    const got = await lines(await uploadBody("fish", { files, split: "SPLIT_TEST", label: "Gold Fish" }));
    expect(got).toEqual([
      { header: { dataset: "fish" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "a.png", content: "AQID" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "b.png", content: "/w==" } },
    ]);
  });

  it("cuts an archive into chunks, naming it in the first", async () => {
    const bytes = new Uint8Array((1 << 20) + 10).map((_, i) => i % 251);
    const got = (await lines(await uploadBody("fish", { archive: new File([bytes], "photos.tar.gz") }))) as {
      archiveChunk?: { fileName?: string; data: string };
    }[];
    expect(got[0]).toEqual({ header: { dataset: "fish" } });
    expect(got).toHaveLength(3);
    expect(got[1].archiveChunk?.fileName).toBe("photos.tar.gz");
    expect(got[2].archiveChunk?.fileName).toBeUndefined();
    const joined = got.slice(1).map((m) => atob(m.archiveChunk!.data)).join("");
    expect(joined.length).toBe(bytes.length);
    expect(joined.charCodeAt(1 << 20)).toBe(bytes[1 << 20]);
  });
});

describe("base64", () => {
  it("encodes large inputs without overflowing the call stack", () => {
    const big = new Uint8Array(300_000).fill(65);
    expect(atob(base64(big)).length).toBe(300_000);
  });
});

describe("batches", () => {
  const f = (n: number, name = `${n}`) => new File([new Uint8Array(n)], name);
  const cases: { name: string; sizes: number[]; max: number; want: number[][] }[] = [
    { name: "all in one", sizes: [1, 2, 3], max: 10, want: [[1, 2, 3]] },
    { name: "split at the limit", sizes: [4, 4, 4], max: 8, want: [[4, 4], [4]] },
    { name: "a big file alone", sizes: [1, 20, 1], max: 8, want: [[1], [20], [1]] },
    { name: "nothing", sizes: [], max: 8, want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(batches(c.sizes.map((n) => f(n)), c.max).map((b) => b.map((x) => x.size))).toEqual(c.want);
    });
  }
});

describe("uploadImages", () => {
  it("sums the outcome of every request and reports overall progress", async () => {
    const big = (name: string) => new File([new Uint8Array(10 << 10)], name); // 2 per request would pass 16 KiB
    const progress: number[] = [];
    const sent: string[][] = [];
    const send = async (body: Blob, onProgress: (f: number) => void) => {
      const msgs = (await lines(body)) as { file?: { fileName: string } }[];
      sent.push(msgs.filter((m) => m.file).map((m) => m.file!.fileName));
      onProgress(0.5);
      return { counts: { seen: 1, added: 1, duplicates: 0, rejected: 0, conflicts: 0 }, rejections: [] };
    };
    const r = await uploadImages("fish", { files: [big("a.png"), big("b.png")], split: "SPLIT_TRAIN", label: "Bag" }, (p) => progress.push(p), send, 16 << 10);
    expect(sent).toEqual([["a.png"], ["b.png"]]);
    expect(r.counts).toEqual({ seen: 2, added: 2, duplicates: 0, rejected: 0, conflicts: 0 });
    expect(progress).toEqual([0.25, 0.75, 1]);
  });
});
