import { shoal } from "./auth";

// The API's types and helpers come from the TypeScript SDK
// (clients/typescript, @shoal/client), generated from the OpenAPI document.
export { ok } from "@shoal/client";
export type { S } from "@shoal/client";
export { shoal };

// api is the SDK's typed REST client, carrying this tab's token
// (src/api/auth.ts).
export const api = shoal.api;

// thumbnailUrl is an image's thumbnail, longest side size pixels. An <img>
// cannot send the token: show it with useImageSource (src/hooks.ts).
export function thumbnailUrl(dataset: string, imageId: string, size = 128): string {
  return `/v1/datasets/${encodeURIComponent(dataset)}/images/${encodeURIComponent(imageId)}/content?thumbnail_size=${size}`;
}

// int64 fields travel as numbers (as strings beyond 2^53); num reads one (or
// a missing one as 0).
export function num(v: string | number | undefined | null): number {
  if (v === undefined || v === null || v === "") return 0;
  return typeof v === "number" ? v : Number(v);
}
