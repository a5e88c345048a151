import type { components } from "./schema";

export type RpcStatus = components["schemas"]["rpcStatus"];

// gRPC status code names, indexed by number, as the gateway's JSON errors
// carry the number.
const codeNames = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

const codeHints: Record<string, string> = {
  INVALID_ARGUMENT: "Invalid request",
  NOT_FOUND: "Not found",
  ALREADY_EXISTS: "Already exists",
  PERMISSION_DENIED: "Not allowed",
  RESOURCE_EXHAUSTED: "Server busy or limit reached",
  FAILED_PRECONDITION: "Not possible now",
  UNIMPLEMENTED: "Not supported",
  UNAVAILABLE: "Service unavailable",
  DEADLINE_EXCEEDED: "Timed out",
  INTERNAL: "Server error",
  CANCELLED: "Cancelled",
};

// ApiError is a failed API call, with a message fit to show a person.
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(message: string, status: number, code: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

function isStatus(body: unknown): body is RpcStatus {
  return typeof body === "object" && body !== null && ("message" in body || "code" in body);
}

// toApiError turns whatever an error response carried (the gateway's JSON
// {"code","message","details"}, plain text from a proxy, nothing) into an
// ApiError whose message reads as a sentence, never as raw JSON.
export function toApiError(body: unknown, status = 0): ApiError {
  if (typeof body === "string") {
    const text = body.trim();
    try {
      if (text.startsWith("{")) return toApiError(JSON.parse(text), status);
    } catch {
      // not JSON: shown as text below
    }
    const message = text && !text.startsWith("<") ? text : `HTTP ${status || "error"}`;
    return new ApiError(message, status, "UNKNOWN");
  }
  if (isStatus(body)) {
    const code = typeof body.code === "number" ? (codeNames[body.code] ?? `code ${body.code}`) : "UNKNOWN";
    const message = body.message?.trim() || codeHints[code] || `HTTP ${status}`;
    return new ApiError(message, status, code);
  }
  return new ApiError(status ? `HTTP ${status}` : "no answer from the server", status, "UNKNOWN");
}

// describe renders any thrown value as one readable line.
export function describe(err: unknown): string {
  if (err instanceof ApiError) {
    const hint = codeHints[err.code];
    return hint && !err.message.toLowerCase().startsWith(hint.toLowerCase()) ? `${hint}: ${err.message}` : err.message;
  }
  if (err instanceof TypeError) return `Cannot reach the server (${err.message})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
