import { shoal } from "./auth";
import type { S } from "./client";
import type { UploadResult } from "@shoal/client";

export type { UploadResult };
export { base64, batchBytes, batches, uploadBody } from "@shoal/client";

// sendUpload posts one upload stream with the SDK, through XMLHttpRequest,
// whose upload events (unlike fetch's) report progress; onProgress gets the
// fraction sent.
export function sendUpload(body: Blob, onProgress: (fraction: number) => void): Promise<UploadResult> {
  return shoal.sendUpload(body, onProgress);
}

// uploadImages uploads images (of one split and label) or one archive with
// the SDK, in requests of at most 16 MiB of images, reporting the overall
// fraction sent, and returns the summed outcome.
export function uploadImages(
  dataset: string,
  input: { files: File[]; split: S<"v1Split">; label: string } | { archive: File },
  onProgress: (fraction: number) => void,
): Promise<UploadResult> {
  return shoal.uploadImages(dataset, input, { onProgress });
}
