import type { ShoalClient, S } from "./client.js";
import { ok } from "./client.js";
import { ShoalError } from "./errors.js";
import { base64 } from "./upload.js";

// An image to classify: its encoded bytes (JPEG, PNG, GIF, WebP, BMP), or a
// Blob or File holding them.
export type ImageInput = Uint8Array | ArrayBuffer | Blob;

export interface PredictOptions {
  // model to ask. (The REST route names it in its path, so unlike gRPC's
  // Predict there is no server default to fall back on.)
  model: string;
  // version of the model to ask; by default the one its alias names.
  version?: number;
  // alias naming the version when no version is given; by default
  // "production".
  alias?: string;
  // topK is the number of labels each image's result lists, best first; by
  // default 5 (at most the model's number of labels).
  topK?: number;
  signal?: AbortSignal;
}

// bytesOf reads an image's bytes.
export async function bytesOf(image: ImageInput): Promise<Uint8Array> {
  if (image instanceof Uint8Array) return image;
  if (image instanceof ArrayBuffer) return new Uint8Array(image);
  return new Uint8Array(await image.arrayBuffer());
}

// predict classifies images in one request (POST /v1/models/{model}:predict);
// the server decodes them with the model version's input spec and batches
// them with other callers'. The answer has one result per image, in order,
// and the model and version that answered. An image that does not decode
// throws ShoalError INVALID_ARGUMENT; a model or version that does not
// exist, NOT_FOUND.
export async function predict(
  client: ShoalClient,
  images: ImageInput | ImageInput[],
  options: PredictOptions,
): Promise<S<"v1PredictResponse">> {
  if (!options?.model) throw new ShoalError({ code: "INVALID_ARGUMENT", message: "predict: options.model is required (the REST route names the model)" });
  const list = Array.isArray(images) ? images : [images];
  const encoded = await Promise.all(list.map(async (i) => base64(await bytesOf(i))));
  return ok(client.api.POST("/v1/models/{model}:predict", {
    params: { path: { model: options.model } },
    body: {
      images: encoded,
      ...(options.topK ? { topK: options.topK } : {}),
      ...(options.version ? { version: options.version } : {}),
      ...(options.alias ? { alias: options.alias } : {}),
    },
    signal: options.signal,
  }));
}
