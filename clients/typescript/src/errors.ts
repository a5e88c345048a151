import type { components } from "./gen/schema.js";

// RpcStatus is the REST API's error body: {"code", "message", "details"}.
export type RpcStatus = components["schemas"]["rpcStatus"];

// The gRPC status codes by number, as the REST API's errors carry them.
export const codeNames = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
] as const;

// Code is a gRPC status code's name: what a ShoalError's code holds.
export type Code = (typeof codeNames)[number];

// What each code means, for an error whose answer carried no message.
const codeMeanings: Partial<Record<Code, string>> = {
  INVALID_ARGUMENT: "Invalid request",
  NOT_FOUND: "Not found",
  ALREADY_EXISTS: "Already exists",
  PERMISSION_DENIED: "Not allowed",
  UNAUTHENTICATED: "A valid token is required",
  RESOURCE_EXHAUSTED: "Server busy or limit reached",
  FAILED_PRECONDITION: "Not possible now",
  UNIMPLEMENTED: "Not supported",
  UNAVAILABLE: "Service unavailable",
  DEADLINE_EXCEEDED: "Timed out",
  INTERNAL: "Server error",
  CANCELLED: "Cancelled",
};

// meaning is a short phrase for code ("Not found"), or undefined.
export function meaning(code: string): string | undefined {
  return codeMeanings[code as Code];
}

// ShoalError is a failed call: the server's answer (HTTP status, gRPC code,
// its reason) or, with status 0 and code UNAVAILABLE, a server that could
// not be reached or a connection lost mid-answer. Every helper of the SDK
// and ok() throw it; match its kind by code:
//
//   if (err instanceof ShoalError && err.code === "NOT_FOUND") ...
export class ShoalError extends Error {
  // status is the HTTP status; 0 when no answer came.
  readonly status: number;
  // code is the gRPC status code's name, e.g. "NOT_FOUND"; "UNKNOWN" for an
  // answer that is not the API's JSON error (a proxy's page: see status).
  readonly code: Code;
  // reason is the server's message as it sent it ("" when it sent none);
  // message is the same, or what the code means when it is empty.
  readonly reason: string;
  // details are the error's google.protobuf.Any details, as JSON.
  readonly details: unknown[];
  // retryAfter is how many seconds the server asked the caller to wait
  // before trying again (a rate limit's 429); 0 when it did not say.
  readonly retryAfter: number;

  constructor(init: { message?: string; status?: number; code?: Code; details?: unknown[]; retryAfter?: number }) {
    const code = init.code ?? "UNKNOWN";
    const reason = init.message?.trim() ?? "";
    super(reason || meaning(code) || (init.status ? `HTTP ${init.status}` : code));
    this.name = "ShoalError";
    this.status = init.status ?? 0;
    this.code = code;
    this.reason = reason;
    this.details = init.details ?? [];
    this.retryAfter = init.retryAfter ?? 0;
  }
}

function isStatus(body: unknown): body is RpcStatus {
  return typeof body === "object" && body !== null && ("message" in body || "code" in body);
}

// toShoalError makes a ShoalError of what an error answer carried: the
// API's JSON {"code","message","details"} (as text or parsed; a stream's
// {"error": ...} line too), plain text from a proxy, or nothing. The message reads as a sentence, never as raw
// JSON or HTML.
export function toShoalError(body: unknown, status = 0, retryAfter = 0): ShoalError {
  if (body instanceof ShoalError) return body;
  if (typeof body === "string") {
    const text = body.trim();
    if (text.startsWith("{")) {
      try {
        return toShoalError(JSON.parse(text), status, retryAfter);
      } catch {
        // not JSON: shown as text below
      }
    }
    const message = text && !text.startsWith("<") ? text : status ? `HTTP ${status}` : "";
    return new ShoalError({ message, status, code: "UNKNOWN", retryAfter });
  }
  // A server stream that fails before its first message answers its error
  // as a stream line: {"error": status}.
  if (typeof body === "object" && body !== null && "error" in body && isStatus(body.error)) {
    return toShoalError(body.error, status, retryAfter);
  }
  if (isStatus(body)) {
    const code = typeof body.code === "number" ? (codeNames[body.code] ?? "UNKNOWN") : "UNKNOWN";
    return new ShoalError({ message: body.message, status, code, details: body.details ?? [], retryAfter });
  }
  return new ShoalError({ message: status ? "" : "no answer from the server", status, retryAfter });
}

// fromResponse reads a failed response's body into a ShoalError.
export async function fromResponse(response: Response): Promise<ShoalError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body was cut: the status says enough
  }
  return toShoalError(text, response.status, retryAfterOf(response));
}

// retryAfterOf reads a Retry-After header given in seconds (the only form
// Shoal sends).
export function retryAfterOf(response: Response): number {
  const v = Number(response.headers.get("Retry-After") ?? "");
  return Number.isFinite(v) && v > 0 ? v : 0;
}

// isAbort reports whether err is the end of a call its caller aborted.
export function isAbort(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: string }).name === "AbortError";
}

// unreachable makes a fetch that failed without an answer (connection
// refused, reset, cut mid-body) a ShoalError UNAVAILABLE; an abort, and
// errors that are one already, pass unchanged.
export function unreachable(err: unknown): unknown {
  if (err instanceof ShoalError || isAbort(err)) return err;
  const cause = err instanceof Error ? err.message : String(err);
  return new ShoalError({ message: `cannot reach the server (${cause})`, status: 0, code: "UNAVAILABLE" });
}
