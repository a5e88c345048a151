import createFetchClient from "openapi-fetch";
import type { Client as FetchClient, Middleware } from "openapi-fetch";
import type { components, paths } from "./gen/schema.js";
import { retryAfterOf, toShoalError, unreachable } from "./errors.js";
import { predict } from "./predict.js";
import type { ImageInput, PredictOptions } from "./predict.js";
import { watchJob } from "./watch.js";
import type { JobEvent, WatchOptions } from "./watch.js";
import { sendUpload, uploadImages } from "./upload.js";
import type { UploadInput, UploadOptions, UploadResult } from "./upload.js";

// Schemas are the REST API's messages by their OpenAPI names; S gives them
// short names: S<"v1Job">.
export type Schemas = components["schemas"];
export type S<K extends keyof Schemas> = Schemas[K];

// The API's typed fetch client (openapi-fetch over the generated paths).
export type Api = FetchClient<paths>;

// A token, or where to read it at each call (a login that can change).
export type TokenSource = string | null | undefined | (() => string | null | undefined);

export interface ClientOptions {
  // baseUrl is the server's HTTP address, e.g. "http://localhost:8080". By
  // default: in a browser, the page's origin (the console is served by the
  // API's server); elsewhere $SHOAL_URL, else http://localhost:8080.
  baseUrl?: string;
  // token is sent as "Authorization: Bearer" on every call: a token from
  // `shoal tokens create`, or the admin token a new install writes to
  // ./data/admin-token. By default $SHOAL_TOKEN outside a browser; null or
  // "" sends none (anonymous calls may predict, by default, and nothing
  // else). A function is called at each request.
  token?: TokenSource;
  // fetch makes the requests; by default globalThis.fetch, looked up at
  // each call.
  fetch?: (request: Request) => Promise<Response>;
  // onResponse hears the status of every answer, with the token the
  // request carried (undefined: none): e.g. to ask for a new login on a 401.
  onResponse?: (status: number, token: string | undefined) => void;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name] || undefined;
}

function defaultBaseUrl(): string {
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
  if (origin && origin !== "null") return origin;
  return env("SHOAL_URL") ?? "http://localhost:8080";
}

// ShoalClient calls a Shoal server's REST API. `api` is the typed client of
// every route (generated from the OpenAPI document); the methods are the
// helpers the other SDKs have. Failures throw ShoalError.
//
//   const shoal = new ShoalClient({ baseUrl: "http://localhost:8080", token });
//   const { datasets } = await ok(shoal.api.GET("/v1/datasets"));
export class ShoalClient {
  readonly baseUrl: string;
  readonly api: Api;
  readonly #token: TokenSource;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #onResponse?: (status: number, token: string | undefined) => void;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
    this.#token = options.token === undefined ? env("SHOAL_TOKEN") : options.token;
    this.#fetch = options.fetch ?? ((request) => globalThis.fetch(request));
    this.#onResponse = options.onResponse;
    this.api = createFetchClient<paths>({ baseUrl: this.baseUrl, fetch: (request: Request) => this.#fetch(request) });
    this.api.use(this.#middleware());
  }

  // token is the token calls carry now, or undefined.
  token(): string | undefined {
    const t = typeof this.#token === "function" ? this.#token() : this.#token;
    return t?.trim() || undefined;
  }

  // authorization is the Authorization header calls carry now, or
  // undefined without a token.
  authorization(): string | undefined {
    const t = this.token();
    return t ? `Bearer ${t}` : undefined;
  }

  // url is the absolute URL of an API path ("/v1/jobs").
  url(path: string): string {
    return this.baseUrl + (path.startsWith("/") ? path : `/${path}`);
  }

  // fetch requests an API path with the token, for what the typed client
  // does not cover (server streams, image bytes). It returns the response
  // whatever its status; a server that cannot be reached throws ShoalError
  // UNAVAILABLE.
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const request = new Request(this.url(path), init);
    const token = this.#authorize(request);
    let response: Response;
    try {
      response = await this.#fetch(request);
    } catch (err) {
      throw unreachable(err);
    }
    this.#onResponse?.(response.status, token);
    return response;
  }

  // noteResponse tells onResponse of an answer to a request the client did
  // not make with fetch (an XMLHttpRequest).
  noteResponse(status: number, token: string | undefined): void {
    this.#onResponse?.(status, token);
  }

  // predict classifies images (encoded JPEG, PNG, GIF, WebP, BMP) in one
  // request; see predict.ts.
  predict(images: ImageInput | ImageInput[], options: PredictOptions): Promise<S<"v1PredictResponse">> {
    return predict(this, images, options);
  }

  // watchJob follows a training job's events; see watch.ts.
  watchJob(jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEvent> {
    return watchJob(this, jobId, options);
  }

  // uploadImages uploads images, or one archive, into a dataset; see
  // upload.ts.
  uploadImages(dataset: string, input: UploadInput, options: UploadOptions = {}): Promise<UploadResult> {
    return uploadImages(this, dataset, input, options);
  }

  // sendUpload posts one newline-delimited JSON upload stream; see upload.ts.
  sendUpload(body: Blob, onProgress?: (fraction: number) => void, signal?: AbortSignal): Promise<UploadResult> {
    return sendUpload(this, body, onProgress, signal);
  }

  // #authorize puts the token on request, unless it has an Authorization
  // header already; it returns the token sent.
  #authorize(request: Request): string | undefined {
    const given = request.headers.get("Authorization");
    if (given !== null) return given.replace(/^Bearer\s+/i, "") || undefined;
    const token = this.token();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return token;
  }

  #middleware(): Middleware {
    return {
      onRequest: ({ request }) => {
        this.#authorize(request);
        return request;
      },
      onResponse: ({ request, response }) => {
        this.#onResponse?.(response.status, request.headers.get("Authorization")?.replace(/^Bearer\s+/i, "") || undefined);
        return response;
      },
      onError: ({ error }) => {
        const err = unreachable(error);
        return err instanceof Error ? err : new Error(String(err));
      },
    };
  }
}

type Result<T> = { data?: T; error?: unknown; response: Response };

// ok returns a typed call's data, or throws a ShoalError with the server's
// reason:
//
//   const { job } = await ok(shoal.api.GET("/v1/jobs/{jobId}", { params: { path: { jobId } } }));
export async function ok<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw toShoalError(error, response.status, retryAfterOf(response));
  return data as T;
}

