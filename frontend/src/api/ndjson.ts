import { toApiError } from "./errors";
import type { RpcStatus } from "./errors";

// A server stream reaches HTTP as newline-delimited JSON: each line is
// {"result": message} or, last, {"error": status}.
export type StreamLine<T> = { result?: T; error?: RpcStatus };

// readNDJSON yields the results of a server stream's response as they
// arrive, and throws an ApiError for an error line or a failed response.
// Lines may be split across chunks, and several may share one.
export async function* readNDJSON<T>(response: Response, signal?: AbortSignal): AsyncGenerator<T> {
  if (!response.ok) throw toApiError(await response.text(), response.status);
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
      throw toApiError(`malformed stream line: ${text.slice(0, 80)}`, response.status);
    }
    if (msg.error) throw toApiError(msg.error, response.status);
    return msg.result;
  };
  try {
    for (;;) {
      if (signal?.aborted) return;
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
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
