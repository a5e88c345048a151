import type { ShoalClient, S } from "./client.js";
import { ShoalError, retryAfterOf, toShoalError } from "./errors.js";

type UploadMessage = S<"v1UploadImagesRequest">;
export type UploadResult = S<"v1UploadImagesResponse">;
export type Split = S<"v1Split">;

// UploadItem is one image with its place in the dataset.
export interface UploadItem {
  content: Blob | Uint8Array;
  fileName: string;
  split: Split;
  label: string;
}

// What an upload sends: images of one split and label (Files, whose names
// are kept), images each with its own place, or one .zip, .tar or .tar.gz
// archive laid out split/Label/file, which the server unpacks.
export type UploadInput =
  | { files: Blob[]; split: Split; label: string }
  | { items: UploadItem[] }
  | { archive: Blob; fileName?: string };

export interface UploadOptions {
  // onProgress is told the fraction of the images' bytes sent, from 0 to 1.
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  // maxBatchBytes bounds the raw image bytes of one request (16 MiB by
  // default); a larger image goes alone.
  maxBatchBytes?: number;
}

// Archives travel in pieces of this many bytes, one stream message each.
export const chunkBytes = 1 << 20;

// Raw image bytes per request when uploading single images, so that one
// request's base64 is held at a time and each request's outcome comes back
// as it ends. (The server bounds each message of an upload stream by its
// grpc.max-message-bytes, not the whole body.)
export const batchBytes = 16 << 20;

// base64 encodes bytes, also beyond what one call's arguments may hold.
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

function sizeOf(c: Blob | Uint8Array): number {
  return c instanceof Uint8Array ? c.byteLength : c.size;
}

async function bytes(c: Blob | Uint8Array): Promise<Uint8Array> {
  return c instanceof Uint8Array ? c : new Uint8Array(await c.arrayBuffer());
}

// itemsOf lists the images of an input that is not an archive.
export function itemsOf(input: Exclude<UploadInput, { archive: Blob }>): UploadItem[] {
  if ("items" in input) return input.items;
  return input.files.map((f) => ({ content: f, fileName: (f as { name?: string }).name ?? "", split: input.split, label: input.label }));
}

// uploadBody builds UploadImages' client stream as the gateway takes it:
// newline-delimited JSON, the header first, then one message per image or
// per archive chunk.
export async function uploadBody(dataset: string, input: UploadInput): Promise<Blob> {
  const parts: string[] = [line({ header: { dataset } })];
  if ("archive" in input) {
    const data = new Uint8Array(await input.archive.arrayBuffer());
    const fileName = input.fileName ?? (input.archive as { name?: string }).name ?? "";
    // An empty archive still goes as one chunk, its name and no data, for
    // the server to refuse; sending nothing would be an empty upload.
    for (let off = 0; off < data.length || off === 0; off += chunkBytes) {
      parts.push(line({ archiveChunk: { fileName: off === 0 ? fileName : undefined, data: base64(data.subarray(off, off + chunkBytes)) } }));
      if (data.length === 0) break;
    }
  } else {
    for (const f of itemsOf(input)) {
      const content = base64(await bytes(f.content));
      parts.push(line({ file: { split: f.split, label: f.label, fileName: f.fileName, content } }));
    }
  }
  return new Blob(parts, { type: "application/json" });
}

// batches groups items into consecutive runs of at most maxBytes each (a
// larger one goes alone), so any number of images can be uploaded; size
// gives an item's bytes.
export function batches<T>(items: T[], maxBytes = batchBytes, size: (item: T) => number = defaultSize): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let total = 0;
  for (const it of items) {
    const n = size(it);
    if (cur.length > 0 && total + n > maxBytes) {
      out.push(cur);
      cur = [];
      total = 0;
    }
    cur.push(it);
    total += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function defaultSize(it: unknown): number {
  if (it instanceof Blob || it instanceof Uint8Array) return sizeOf(it);
  return sizeOf((it as UploadItem).content);
}

const uploadPath = "/v1/images:upload";

// sendUpload posts one upload stream (POST /v1/images:upload). In a
// browser it goes through XMLHttpRequest, whose upload events (unlike
// fetch's) report progress as the bytes leave; elsewhere through fetch,
// which reports the whole at the end.
export async function sendUpload(
  client: ShoalClient,
  body: Blob,
  onProgress: (fraction: number) => void = () => {},
  signal?: AbortSignal,
): Promise<UploadResult> {
  if (typeof XMLHttpRequest !== "undefined") return sendWithXHR(client, body, onProgress, signal);
  const response = await client.fetch(uploadPath, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body,
    signal,
  });
  const text = await response.text();
  if (!response.ok) throw toShoalError(text, response.status, retryAfterOf(response));
  onProgress(1);
  return parseResult(text, response.status);
}

function parseResult(text: string, status: number): UploadResult {
  try {
    return JSON.parse(text) as UploadResult;
  } catch {
    throw toShoalError(text, status);
  }
}

function sendWithXHR(client: ShoalClient, body: Blob, onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", client.url(uploadPath));
    xhr.setRequestHeader("Content-Type", "application/json");
    const token = client.token();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const settle = () => signal?.removeEventListener("abort", abort);
    xhr.onload = () => {
      settle();
      client.noteResponse(xhr.status, token);
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(parseResult(xhr.responseText, xhr.status));
        } catch (err) {
          reject(err);
        }
        return;
      }
      const retry = Number(xhr.getResponseHeader?.("Retry-After") ?? "");
      reject(toShoalError(xhr.responseText, xhr.status, Number.isFinite(retry) && retry > 0 ? retry : 0));
    };
    xhr.onerror = () => {
      settle();
      reject(new ShoalError({ code: "UNAVAILABLE", message: "cannot reach the server (network error during the upload)" }));
    };
    xhr.onabort = () => {
      settle();
      reject(new DOMException("the upload was aborted", "AbortError"));
    };
    xhr.send(body);
  });
}

const zeroCounts = (): Required<NonNullable<UploadResult["counts"]>> => ({ seen: 0, added: 0, duplicates: 0, rejected: 0, conflicts: 0 });

// uploadImages uploads images into a dataset that exists, in as many
// requests as batches() makes, and returns the summed outcome: how many
// images were seen, added, already there (duplicates), rejected (with each
// one's reason) or in conflict. An archive goes in one request. The server
// validates every image and stores identical bytes once.
export async function uploadImages(
  client: ShoalClient,
  dataset: string,
  input: UploadInput,
  options: UploadOptions = {},
): Promise<UploadResult> {
  const onProgress = options.onProgress ?? (() => {});
  if ("archive" in input) return client.sendUpload(await uploadBody(dataset, input), onProgress, options.signal);
  const items = itemsOf(input);
  const total = items.reduce((a, f) => a + sizeOf(f.content), 0) || 1;
  const sum = zeroCounts();
  const rejections: NonNullable<UploadResult["rejections"]> = [];
  let done = 0;
  for (const batch of batches(items, options.maxBatchBytes ?? batchBytes)) {
    const size = batch.reduce((a, f) => a + sizeOf(f.content), 0);
    const body = await uploadBody(dataset, { items: batch });
    const r = await client.sendUpload(body, (f) => onProgress((done + f * size) / total), options.signal);
    done += size;
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += Number(r.counts?.[k] ?? 0);
    rejections.push(...(r.rejections ?? []));
  }
  onProgress(1);
  return { counts: sum, rejections };
}
