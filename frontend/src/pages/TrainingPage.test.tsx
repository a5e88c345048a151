import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { TrainingPage } from "./TrainingPage";
import { mockFetch } from "../test-utils";

afterEach(cleanup);
beforeEach(() => window.history.replaceState(null, "", "/training?job=j1"));

const ndjson = (events: unknown[]) => events.map((e) => JSON.stringify({ result: e })).join("\n") + "\n";
const job = { id: "j1", state: "JOB_STATE_RUNNING", spec: { dataset: "fish", snapshotVersion: "1", architecture: "small-cnn", epochs: 2, batchSize: 64, learningRate: 0.001 } };
const common = [
  { path: "/v1/jobs", body: { jobs: [job] } },
  { path: "/v1/datasets", body: { datasets: [{ name: "fish" }] } },
  { path: "/v1/datasets/fish/snapshots", body: { snapshots: [{ version: "1", imageCount: "150" }] } },
  { path: "/v1/architectures", body: { architectures: [{ name: "small-cnn", defaultImageSize: 28, minImageSize: 8 }] } },
  { path: "/v1/jobs/j1", body: { job } },
];

describe("TrainingPage", () => {
  it("follows a job's stream: progress, per-epoch charts, evaluation, the registered version", async () => {
    mockFetch([
      ...common,
      {
        path: "/v1/jobs/j1:watch",
        body: ndjson([
          { sequence: "1", state: { state: "JOB_STATE_RUNNING" } },
          { sequence: "2", progress: { epoch: 1, epochs: 2, step: 3, steps: 4, eta: "5s" } },
          { sequence: "3", epoch: { epoch: 1, trainLoss: 1, valLoss: 0.9, trainAccuracy: 0.5, valAccuracy: 0.55, duration: "0.2s" } },
          { sequence: "4", epoch: { epoch: 2, trainLoss: 0.5, valLoss: 0.4, trainAccuracy: 0.8, valAccuracy: 0.85, duration: "0.2s", best: true } },
          { sequence: "5", evaluation: { testAccuracy: 0.9, testExamples: "30" } },
          { sequence: "6", registered: { model: "fish", version: "4" } },
          { sequence: "7", state: { state: "JOB_STATE_SUCCEEDED" } },
        ]),
      },
    ]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getByTestId("job-state").textContent).toBe("succeeded"));
    expect(screen.getByTestId("job-charts").getAttribute("data-epochs")).toBe("2");
    expect(screen.getByTestId("job-evaluation").textContent).toBe("Test accuracy 90.0% on 30 images.");
    expect(screen.getByTestId("job-registered").textContent).toBe("Registered as fish v4.");
    expect(screen.getByRole("progressbar", { name: "succeeded" }).getAttribute("aria-valuenow")).toBe("100");
    expect(screen.queryByTestId("job-cancel")).toBeNull();
  });

  it("shows a running job's progress with its ETA, and cancels it", async () => {
    const calls = mockFetch([
      ...common,
      { path: "/v1/jobs/j1:watch", body: ndjson([{ sequence: "1", progress: { epoch: 2, epochs: 2, step: 1, steps: 4, eta: "75s" } }]) },
      { method: "POST", path: "/v1/jobs/j1:cancel", body: { job: { ...job, state: "JOB_STATE_CANCELLED" } } },
    ]);
    render(<TrainingPage />);
    const bar = await screen.findByRole("progressbar", { name: "epoch 2/2, step 1/4, ETA 1 min 15 s" });
    expect(bar.getAttribute("aria-valuenow")).toBe("63");
    fireEvent.click(screen.getByTestId("job-cancel"));
    await waitFor(() => expect(calls.some((c) => c.method === "POST" && c.url === "/v1/jobs/j1:cancel")).toBe(true));
  });

  it("shows a stream's error line as a message and a failed job's reason", async () => {
    mockFetch([
      ...common,
      {
        path: "/v1/jobs/j1:watch",
        body: ndjson([{ sequence: "1", state: { state: "JOB_STATE_FAILED", reason: "snapshot 1 of fish has no test images" } }]),
      },
    ]);
    render(<TrainingPage />);
    expect((await screen.findByRole("alert")).textContent).toBe("snapshot 1 of fish has no test images");
    expect(screen.getByTestId("job-state").textContent).toBe("failed");
  });

  it("starts a job with the form's spec", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j2" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "v1 (150 images)" })).toHaveLength(1));
    await waitFor(() => expect(screen.getAllByRole("option", { name: "small-cnn" })).toHaveLength(1));
    fireEvent.change(screen.getByTestId("train-snapshot"), { target: { value: "1" } });
    fireEvent.change(screen.getByTestId("train-epochs"), { target: { value: "3" } });
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j2"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({
      spec: { dataset: "fish", snapshotVersion: "1", architecture: "small-cnn", epochs: 3, batchSize: 64, learningRate: 0.001, promotion: "PROMOTION_POLICY_NEVER" },
    });
  });
});
