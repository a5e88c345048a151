import { afterEach, describe, expect, it, vi } from "vitest";
import { uploadImages } from "./upload";
import { clearToken, setToken } from "./auth";

afterEach(() => clearToken());

// FakeXHR stands in for XMLHttpRequest: it records each request and answers
// with the outcome of one file per message sent.
function fakeXHR() {
  const requests: { url: string; headers: Record<string, string>; lines: unknown[] }[] = [];
  class FakeXHR {
    status = 200;
    responseText = "";
    upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    url = "";
    headers: Record<string, string> = {};
    open(_method: string, url: string) { this.url = url; }
    setRequestHeader(k: string, v: string) { this.headers[k] = v; }
    send(body: Blob) {
      void body.text().then((text) => {
        const lines = text.trim().split("\n").map((l) => JSON.parse(l));
        requests.push({ url: this.url, headers: this.headers, lines });
        this.upload.onprogress?.({ lengthComputable: true, loaded: body.size / 2, total: body.size });
        const n = lines.length - 1;
        this.responseText = JSON.stringify({ counts: { seen: n, added: n, duplicates: 0, rejected: 0, conflicts: 0 }, rejections: [] });
        this.onload?.();
      });
    }
  }
  vi.stubGlobal("XMLHttpRequest", FakeXHR);
  return requests;
}

describe("uploadImages", () => {
  it("sends the images through the SDK's upload stream, with the token and progress", async () => {
    const requests = fakeXHR();
    setToken("uploader");
    const files = [new File([new Uint8Array([1, 2, 3])], "a.png"), new File([new Uint8Array([255])], "b.png")];
    const progress: number[] = [];
    const r = await uploadImages("fish", { files, split: "SPLIT_TEST", label: "Gold Fish" }, (p) => progress.push(p));
    expect(requests).toHaveLength(1);
    expect(requests[0].url).toMatch(/\/v1\/images:upload$/);
    expect(requests[0].headers.Authorization).toBe("Bearer uploader");
    expect(requests[0].lines).toEqual([
      { header: { dataset: "fish" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "a.png", content: "AQID" } },
      { file: { split: "SPLIT_TEST", label: "Gold Fish", fileName: "b.png", content: "/w==" } },
    ]);
    expect(r.counts).toEqual({ seen: 2, added: 2, duplicates: 0, rejected: 0, conflicts: 0 });
    expect(progress).toEqual([0.5, 1]);
  });
});
