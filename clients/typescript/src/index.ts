// @shoal/client: Shoal's TypeScript SDK, for browsers and Node.js. The REST
// API's types are generated from its OpenAPI document (src/gen/schema.ts);
// ShoalClient carries the base URL and token, its `api` calls any route with
// those types, and its helpers predict, follow training jobs (watchJob) and
// upload images. "@shoal/client/node" adds files on this machine.
export { ShoalClient, ok } from "./client.js";
export type { Api, ClientOptions, S, Schemas, TokenSource } from "./client.js";
export { ShoalError, codeNames, fromResponse, isAbort, meaning, toShoalError } from "./errors.js";
export type { Code, RpcStatus } from "./errors.js";
export { readNDJSON } from "./ndjson.js";
export type { StreamLine } from "./ndjson.js";
export { bytesOf } from "./predict.js";
export type { ImageInput, PredictOptions } from "./predict.js";
export { isFinal, terminalStates } from "./watch.js";
export type { JobEvent, JobState, WatchOptions } from "./watch.js";
export { base64, batchBytes, batches, chunkBytes, itemsOf, uploadBody } from "./upload.js";
export type { Split, UploadInput, UploadItem, UploadOptions, UploadResult } from "./upload.js";
export type { components, operations, paths } from "./gen/schema.js";
