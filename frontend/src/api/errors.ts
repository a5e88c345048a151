import { ShoalError, meaning, toShoalError } from "@shoal/client";

// ApiError is a failed API call: the SDK's ShoalError, with the HTTP
// status, the gRPC code's name and a message fit to show a person.
export { ShoalError as ApiError };

// toApiError turns whatever an error response carried (the gateway's JSON
// {"code","message","details"}, plain text from a proxy, nothing) into an
// ApiError whose message reads as a sentence, never as raw JSON.
export const toApiError = toShoalError;

// describe renders any thrown value as one readable line.
export function describe(err: unknown): string {
  if (err instanceof ShoalError) {
    if (err.status === 0 && err.code === "UNAVAILABLE") return err.message.replace(/^cannot/, "Cannot");
    const hint = meaning(err.code);
    return hint && !err.message.toLowerCase().startsWith(hint.toLowerCase()) ? `${hint}: ${err.message}` : err.message;
  }
  if (err instanceof TypeError) return `Cannot reach the server (${err.message})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
