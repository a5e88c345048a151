import { terminalStates } from "@shoal/client";
import type { JobEvent, ShoalError } from "@shoal/client";
import type { S } from "./client";
import { num, shoal } from "./client";

export { terminalStates };
export type { JobEvent };

// watchJob follows WatchJob's NDJSON stream with the SDK: the job's past
// events after afterSequence, then live ones until the job ends. A
// connection lost mid-watch is resumed after the last event (onReconnect is
// told); the loop ends quietly when signal aborts.
export function watchJob(jobId: string, afterSequence: number, signal: AbortSignal, onReconnect?: (err: ShoalError) => void): AsyncGenerator<JobEvent> {
  return shoal.watchJob(jobId, { afterSequence, signal, onReconnect });
}

// JobView is what the Training page shows of a job, folded from its events.
export type JobView = {
  state: S<"v1JobState">;
  reason: string;
  epochs: S<"v1EpochMetrics">[];
  progress?: S<"v1StepProgress">;
  evaluation?: S<"v1Metrics">;
  registered?: S<"v1VersionRef">;
  logs: string[];
  lastSequence: number;
};

export function initialView(job?: S<"v1Job">): JobView {
  return {
    state: job?.state ?? "JOB_STATE_QUEUED",
    reason: job?.error ?? "",
    epochs: [],
    logs: [],
    lastSequence: 0,
  };
}

// applyEvent folds one event into the view. Replayed events (a sequence
// already seen, as after a reconnect) change nothing.
export function applyEvent(v: JobView, ev: JobEvent): JobView {
  const seq = num(ev.sequence);
  if (seq > 0 && seq <= v.lastSequence) return v;
  const next: JobView = { ...v, lastSequence: seq || v.lastSequence };
  if (ev.state) {
    next.state = ev.state.state ?? v.state;
    if (ev.state.reason) next.reason = ev.state.reason;
  }
  if (ev.progress) next.progress = ev.progress;
  if (ev.epoch) next.epochs = [...v.epochs.filter((e) => e.epoch !== ev.epoch?.epoch), ev.epoch].sort((a, b) => (a.epoch ?? 0) - (b.epoch ?? 0));
  if (ev.evaluation) next.evaluation = ev.evaluation;
  if (ev.registered) next.registered = ev.registered;
  if (ev.log?.message) next.logs = [...v.logs, `${ev.log.level ? ev.log.level + ": " : ""}${ev.log.message}`].slice(-50);
  return next;
}

// fraction is how far training is, from the last step progress (epochs and
// steps count from 1); a finished job is whole.
export function fraction(v: JobView): number {
  if (v.state === "JOB_STATE_SUCCEEDED") return 1;
  const p = v.progress;
  if (!p?.epochs || !p.steps) return 0;
  return ((Math.max(0, (p.epoch ?? 1) - 1)) * p.steps + (p.step ?? 0)) / (p.epochs * p.steps);
}
