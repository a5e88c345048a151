import { fromResponse, toShoalError, unreachable } from "./errors.js";
import type { RpcStatus } from "./errors.js";

// A server stream reaches HTTP as newline-delimited JSON: each line is
// {"result": message} or, last, {"error": status}.
export type StreamLine<T> = { result?: T; error?: RpcStatus };

// readNDJSON yields the results of a server stream's response as they
// arrive, and throws a ShoalError for an error line, a failed response or
// a connection lost mid-stream (UNAVAILABLE). Lines may be split across
// chunks, and several may share one. Ending the loop early cancels the
// response's body.
export async function* readNDJSON<T>(response: Response, signal?: AbortSignal): AsyncGenerator<T> {
  if (!response.ok) throw await fromResponse(response);
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const parse = (line: string): T | undefined => {
    const text = line.trim();
    if (!text) return undefined;
    let msg: StreamLine<T>;
    try {
      msg = JSON.parse(text) as StreamLine<T>;
    } catch {
      throw toShoalError(`malformed stream line: ${text.slice(0, 80)}`, response.status);
    }
    if (msg.error) throw toShoalError(msg.error, response.status);
    return msg.result;
  };
  try {
    for (;;) {
      if (signal?.aborted) return;
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) return;
        throw unreachable(err);
      }
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const result = parse(line);
        if (result !== undefined) yield result;
      }
    }
    buffered += decoder.decode();
    const result = parse(buffered);
    if (result !== undefined) yield result;
  } finally {
    reader.cancel().catch(() => {});
  }
}
