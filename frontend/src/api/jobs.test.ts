import { describe, expect, it } from "vitest";
import { applyEvent, fraction, initialView } from "./jobs";
import type { JobEvent } from "./jobs";

const events: JobEvent[] = [
  { sequence: 1, state: { state: "JOB_STATE_RUNNING" } },
  { sequence: 2, progress: { epoch: 1, epochs: 2, step: 5, steps: 10, eta: "3s" } },
  { sequence: 3, epoch: { epoch: 1, trainLoss: 1.2, valLoss: 1.0, trainAccuracy: 0.5, valAccuracy: 0.6 } },
  { sequence: 4, log: { level: "info", message: "checkpoint written" } },
  { sequence: 5, progress: { epoch: 2, epochs: 2, step: 10, steps: 10 } },
  { sequence: 6, epoch: { epoch: 2, trainLoss: 0.8, valLoss: 0.7, trainAccuracy: 0.7, valAccuracy: 0.75 } },
  { sequence: 7, evaluation: { testAccuracy: 0.8 } },
  { sequence: 8, registered: { model: "fish", version: 3 } },
  { sequence: 9, state: { state: "JOB_STATE_SUCCEEDED" } },
];

describe("applyEvent", () => {
  it("folds a job's events into what the page shows", () => {
    const v = events.reduce(applyEvent, initialView());
    expect(v.state).toBe("JOB_STATE_SUCCEEDED");
    expect(v.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(v.evaluation?.testAccuracy).toBe(0.8);
    expect(v.registered).toEqual({ model: "fish", version: 3 });
    expect(v.logs).toEqual(["info: checkpoint written"]);
    expect(v.lastSequence).toBe(9);
    expect(fraction(v)).toBe(1);
  });

  it("ignores events replayed after a reconnect", () => {
    const first = events.slice(0, 4).reduce(applyEvent, initialView());
    const again = events.reduce(applyEvent, first); // the stream replays 1..9
    expect(again.epochs).toHaveLength(2);
    expect(again.logs).toHaveLength(1);
  });

  it("keeps the failure reason", () => {
    const v = applyEvent(initialView(), { sequence: 1, state: { state: "JOB_STATE_FAILED", reason: "out of memory" } });
    expect(v.state).toBe("JOB_STATE_FAILED");
    expect(v.reason).toBe("out of memory");
  });
});

describe("fraction", () => {
  const cases: { progress?: JobEvent["progress"]; want: number }[] = [
    { progress: undefined, want: 0 },
    { progress: { epoch: 1, epochs: 2, step: 5, steps: 10 }, want: 0.25 },
    { progress: { epoch: 2, epochs: 2, step: 10, steps: 10 }, want: 1 },
    { progress: { epoch: 2, epochs: 4, step: 0, steps: 10 }, want: 0.25 },
  ];
  for (const c of cases) {
    it(JSON.stringify(c.progress ?? null), () => {
      expect(fraction({ ...initialView(), state: "JOB_STATE_RUNNING", progress: c.progress })).toBeCloseTo(c.want);
    });
  }
});
