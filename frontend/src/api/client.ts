import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { toApiError } from "./errors";
import { authMiddleware } from "./auth";

// S gives the generated types short names: S<"v1Job">.
export type S<K extends keyof components["schemas"]> = components["schemas"][K];

// api is the typed REST client generated from gen/openapi/shoal.swagger.json.
// Its base URL is the page's origin: the console is served by the same
// server as the API (or, in development, by Vite's proxy).
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? "",
  // Looked up at each call, not captured once, so tests can stand in for it.
  fetch: (request: Request) => globalThis.fetch(request),
});
// Every call carries this tab's token (src/api/auth.ts).
api.use(authMiddleware);

type Result<T> = { data?: T; error?: unknown; response: Response };

// ok returns a call's data or throws an ApiError with the server's message.
export async function ok<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw toApiError(error, response.status);
  return data as T;
}

// thumbnailUrl is an image's thumbnail, longest side size pixels. An <img>
// cannot send the token: show it with useImageSource (src/hooks.ts).
export function thumbnailUrl(dataset: string, imageId: string, size = 128): string {
  return `/v1/datasets/${encodeURIComponent(dataset)}/images/${encodeURIComponent(imageId)}/content?thumbnail_size=${size}`;
}

// int64 fields travel as strings; num reads one (or a missing one as 0).
export function num(v: string | number | undefined | null): number {
  if (v === undefined || v === null || v === "") return 0;
  return typeof v === "number" ? v : Number(v);
}
