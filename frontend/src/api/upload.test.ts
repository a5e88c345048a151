import { describe, expect, it } from "vitest";
import { base64, uploadBody } from "./upload";

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
