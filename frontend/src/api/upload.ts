import { num, type S } from "./client";
import { toApiError } from "./errors";
import { authorization, noteResponse } from "./auth";

type UploadMessage = S<"v1UploadImagesRequest">;
export type UploadResult = S<"v1UploadImagesResponse">;

// Archives travel in pieces of this many bytes, one stream message each.
const chunkBytes = 1 << 20;

export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function line(msg: UploadMessage): string {
  return JSON.stringify(msg) + "\n";
}

// uploadBody builds UploadImages' client stream as the gateway takes it:
// newline-delimited JSON, the header first, then one message per image or
// per archive chunk.
export async function uploadBody(
  dataset: string,
  input: { files: File[]; split: S<"v1Split">; label: string } | { archive: File },
): Promise<Blob> {
  const parts: string[] = [line({ header: { dataset } })];
  if ("archive" in input) {
    const bytes = new Uint8Array(await input.archive.arrayBuffer());
    for (let off = 0; off < bytes.length || off === 0; off += chunkBytes) {
      parts.push(
        line({
          archiveChunk: {
            fileName: off === 0 ? input.archive.name : undefined,
            data: base64(bytes.subarray(off, off + chunkBytes)),
          },
        }),
      );
      if (bytes.length === 0) break;
    }
  } else {
    for (const f of input.files) {
      const content = base64(new Uint8Array(await f.arrayBuffer()));
      parts.push(line({ file: { split: input.split, label: input.label, fileName: f.name, content } }));
    }
  }
  return new Blob(parts, { type: "application/json" });
}

// sendUpload posts the stream with XMLHttpRequest, whose upload events
// (unlike fetch's) report progress; onProgress gets the fraction sent.
export function sendUpload(body: Blob, onProgress: (fraction: number) => void): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/images:upload");
    xhr.setRequestHeader("Content-Type", "application/json");
    const auth = authorization();
    if (auth) xhr.setRequestHeader("Authorization", auth);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      noteResponse(xhr.status, auth);
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as UploadResult);
        } catch {
          reject(toApiError(xhr.responseText, xhr.status));
        }
        return;
      }
      reject(toApiError(xhr.responseText, xhr.status));
    };
    xhr.onerror = () => reject(new TypeError("network error during the upload"));
    xhr.send(body);
  });
}

// Raw image bytes per request when uploading single images, so that the
// browser holds one request's base64 at a time and each request's outcome
// comes back as it ends. (The server bounds each message of an upload stream
// by its grpc.max-message-bytes, not the whole body.)
export const batchBytes = 16 << 20;

// batches groups files into consecutive runs of at most maxBytes each (a
// larger file goes alone), so any number of images can be uploaded.
export function batches(files: File[], maxBytes = batchBytes): File[][] {
  const out: File[][] = [];
  let cur: File[] = [];
  let size = 0;
  for (const f of files) {
    if (cur.length > 0 && size + f.size > maxBytes) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(f);
    size += f.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

// uploadImages uploads images in as many requests as batches() makes,
// reporting the overall fraction sent, and returns the summed outcome.
export async function uploadImages(
  dataset: string,
  input: { files: File[]; split: S<"v1Split">; label: string } | { archive: File },
  onProgress: (fraction: number) => void,
  send: typeof sendUpload = sendUpload,
  maxBytes = batchBytes,
): Promise<UploadResult> {
  if ("archive" in input) return send(await uploadBody(dataset, input), onProgress);
  const total = input.files.reduce((a, f) => a + f.size, 0) || 1;
  const sum: Required<NonNullable<UploadResult["counts"]>> = { seen: 0, added: 0, duplicates: 0, rejected: 0, conflicts: 0 };
  const rejections: NonNullable<UploadResult["rejections"]> = [];
  let done = 0;
  for (const batch of batches(input.files, maxBytes)) {
    const size = batch.reduce((a, f) => a + f.size, 0);
    const r = await send(await uploadBody(dataset, { ...input, files: batch }), (f) => onProgress((done + f * size) / total));
    done += size;
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] = sum[k] + num(r.counts?.[k]);
    rejections.push(...(r.rejections ?? []));
  }
  onProgress(1);
  return { counts: sum, rejections };
}
