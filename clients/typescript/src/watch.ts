import type { ShoalClient, S } from "./client.js";
import { ShoalError, isAbort } from "./errors.js";
import { readNDJSON } from "./ndjson.js";

// JobEvent is one event of a training job: a state change, a log line, step
// progress, an epoch's metrics, the test evaluation or the registered
// version, with its sequence number.
export type JobEvent = S<"v1WatchJobResponse">;
export type JobState = S<"v1JobState">;

// The states a job ends in.
export const terminalStates: readonly JobState[] = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"];

// isFinal reports whether ev moves its job to a final state.
export function isFinal(ev: JobEvent): boolean {
  return ev.state?.state !== undefined && terminalStates.includes(ev.state.state);
}

// Reconnection of a watch, as the Go SDK's: the wait after a failed attempt
// doubles from the first to the last, and a watch gives up after
// maxReconnects attempts in a row that brought no event.
const firstReconnectWait = 100;
const lastReconnectWait = 5000;
const defaultMaxReconnects = 30;

export interface WatchOptions {
  // afterSequence starts the watch after the event with this sequence
  // number, e.g. the last one an earlier watch yielded; by default the
  // job's whole history is replayed.
  afterSequence?: number;
  // signal ends the watch: the loop then ends without an error.
  signal?: AbortSignal;
  // maxReconnects bounds the attempts in a row that bring no event; 30 by
  // default.
  maxReconnects?: number;
  // onReconnect is told of each reconnection: why, and the sequence number
  // the watch resumes after.
  onReconnect?: (error: ShoalError, afterSequence: number) => void;
}

// retryable reports whether a watch may resume after err: the server could
// not be reached or was not ready, the connection was lost, or a proxy
// answered for it.
function retryable(err: unknown): err is ShoalError {
  return err instanceof ShoalError && (err.code === "UNAVAILABLE" || [502, 503, 504].includes(err.status));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

// watchJob follows a training job (GET /v1/jobs/{jobId}:watch, a
// newline-delimited JSON stream): it yields the job's history (state
// changes, logs, each epoch's metrics, the test evaluation, the registered
// version; of the within-epoch progress events only the latest is kept),
// then its events as they happen, and ends after the event that moves the
// job to a final state (succeeded, failed or cancelled).
//
// When the connection is lost, or the server restarts, mid-watch, it asks
// again for the events after the last sequence number it yielded: no event
// is yielded twice, and none is lost. Until the first event arrives (of a
// watch without afterSequence) nothing is retried: a server that cannot be
// reached, a job that does not exist or a missing token throw at once. Any
// error ends the loop by throwing a ShoalError; options.signal ends it
// quietly, and so does leaving the loop.
//
//   for await (const ev of shoal.watchJob(jobId)) {
//     if (ev.epoch) console.log(`epoch ${ev.epoch.epoch}: val accuracy ${ev.epoch.valAccuracy}`);
//   }
export async function* watchJob(client: ShoalClient, jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEvent> {
  const { signal } = options;
  const maxReconnects = options.maxReconnects ?? defaultMaxReconnects;
  let after = options.afterSequence ?? 0;
  let wait = firstReconnectWait;
  for (let attempt = 0; ; attempt++) {
    let err: unknown;
    try {
      const query = after > 0 ? `?afterSequence=${after}` : "";
      const response = await client.fetch(`/v1/jobs/${encodeURIComponent(jobId)}:watch${query}`, {
        signal,
        headers: { Accept: "application/json" },
      });
      for await (const ev of readNDJSON<JobEvent>(response, signal)) {
        const seq = Number(ev.sequence ?? 0);
        if (seq <= after) continue; // yielded already, before a reconnection
        after = seq;
        attempt = 0;
        wait = firstReconnectWait;
        yield ev;
        if (isFinal(ev)) return;
      }
      if (signal?.aborted) return;
      // Over HTTP a proxy may end a long response cleanly; the job goes on.
      err = new ShoalError({ code: "UNAVAILABLE", message: `watching job ${jobId}: the stream ended before the job did` });
    } catch (e) {
      if (isAbort(e) || signal?.aborted) return;
      err = e;
    }
    if (!retryable(err) || after === 0 || attempt >= maxReconnects) throw err;
    options.onReconnect?.(err, after);
    await sleep(wait, signal);
    if (signal?.aborted) return;
    wait = Math.min(2 * wait, lastReconnectWait);
  }
}
