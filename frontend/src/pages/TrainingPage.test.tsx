import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { TrainingPage } from "./TrainingPage";
import { mockFetch, renderAs } from "../test-utils";

afterEach(cleanup);
beforeEach(() => window.history.replaceState(null, "", "/training?job=j1"));

const ndjson = (events: unknown[]) => events.map((e) => JSON.stringify({ result: e })).join("\n") + "\n";
const job = { id: "j1", state: "JOB_STATE_RUNNING", spec: { dataset: "fish", snapshotVersion: 1, architecture: "small-cnn", epochs: 2, batchSize: 64, learningRate: 0.001 } };
const common = [
  { path: "/v1/jobs", body: { jobs: [job] } },
  { path: "/v1/datasets", body: { datasets: [{ name: "fish" }] } },
  { path: "/v1/datasets/fish/snapshots", body: { snapshots: [{ version: 1, imageCount: 150 }] } },
  {
    path: "/v1/architectures",
    body: {
      architectures: [
        { name: "small-cnn", defaultImageSize: 28, minImageSize: 8, defaultChannels: 1 },
        { name: "resnet-small", defaultImageSize: 32, minImageSize: 16, defaultChannels: 3 },
      ],
      defaults: {
        architecture: "small-cnn", imageSize: 28, channels: 1, epochs: 12, batchSize: 64, learningRate: 0.001, validationFraction: 0.2,
        optimizer: "OPTIMIZER_ADAM", schedule: "LEARNING_RATE_SCHEDULE_COSINE", augmentation: { horizontalFlip: true }, promotion: "PROMOTION_POLICY_NEVER",
      },
    },
  },
  { path: "/v1/jobs/j1", body: { job } },
  { path: "/v1/models", body: { models: [{ name: "fish", latestVersion: 2 }] } },
  {
    path: "/v1/models/fish/versions",
    body: {
      versions: [
        { model: "fish", version: 1, architecture: "small-cnn", metrics: { testAccuracy: 0.8 } },
        { model: "fish", version: 2, architecture: "resnet-small", aliases: ["production"], inputSpec: { height: 32, width: 32, channels: 3 } },
      ],
    },
  },
];

describe("TrainingPage", () => {
  it("follows a job's stream: progress, per-epoch charts, evaluation, the registered version", async () => {
    mockFetch([
      ...common,
      {
        path: "/v1/jobs/j1:watch",
        body: ndjson([
          { sequence: 1, state: { state: "JOB_STATE_RUNNING" } },
          { sequence: 2, progress: { epoch: 1, epochs: 2, step: 3, steps: 4, eta: "5s" } },
          { sequence: 3, epoch: { epoch: 1, trainLoss: 1, valLoss: 0.9, trainAccuracy: 0.5, valAccuracy: 0.55, duration: "0.2s" } },
          { sequence: 4, epoch: { epoch: 2, trainLoss: 0.5, valLoss: 0.4, trainAccuracy: 0.8, valAccuracy: 0.85, duration: "0.2s", best: true } },
          { sequence: 5, evaluation: { testAccuracy: 0.9, testExamples: 30 } },
          { sequence: 6, registered: { model: "fish", version: 4 } },
          { sequence: 7, state: { state: "JOB_STATE_SUCCEEDED" } },
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
      { path: "/v1/jobs/j1:watch", body: ndjson([{ sequence: 1, progress: { epoch: 2, epochs: 2, step: 1, steps: 4, eta: "75s" } }]) },
      { method: "POST", path: "/v1/jobs/j1:cancel", body: { job: { ...job, state: "JOB_STATE_CANCELLED" } } },
    ]);
    render(<TrainingPage />);
    const bar = await screen.findByRole("progressbar", { name: "epoch 2/2, step 1/4, ETA 1 min 15 s" });
    expect(bar.getAttribute("aria-valuenow")).toBe("63");
    fireEvent.click(screen.getByTestId("job-cancel"));
    await waitFor(() => expect(calls.some((c) => c.method === "POST" && c.url === "/v1/jobs/j1:cancel")).toBe(true));
  });

  it("shows a read-only token the live job and the jobs, with no form to start and no Cancel", async () => {
    const calls = mockFetch([
      ...common,
      { path: "/v1/jobs/j1:watch", body: ndjson([{ sequence: 1, progress: { epoch: 1, epochs: 2, step: 1, steps: 4 } }]) },
    ]);
    renderAs(<TrainingPage />, ["read"]);
    await screen.findByRole("progressbar", { name: "epoch 1/2, step 1/4" });
    await screen.findByTestId("jobs");
    expect(screen.queryByTestId("job-cancel")).toBeNull();
    expect(screen.queryByTestId("train-start")).toBeNull();
    expect(screen.getByTestId("read-only").textContent).toMatch(/write scope/);
    // The form's lists are not even asked for.
    expect(calls.some((c) => c.url.startsWith("/v1/architectures"))).toBe(false);
  });

  it("shows a stream's error line as a message and a failed job's reason", async () => {
    mockFetch([
      ...common,
      {
        path: "/v1/jobs/j1:watch",
        body: ndjson([{ sequence: 1, state: { state: "JOB_STATE_FAILED", reason: "snapshot 1 of fish has no test images" } }]),
      },
    ]);
    render(<TrainingPage />);
    expect((await screen.findByRole("alert")).textContent).toBe("snapshot 1 of fish has no test images");
    expect(screen.getByTestId("job-state").textContent).toBe("failed");
  });

  it("starts a job with only the fields set; the others show the server's defaults", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j2" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "v1 (150 images)" })).toHaveLength(1));
    await waitFor(() => expect(screen.getAllByRole("option", { name: "small-cnn" })).toHaveLength(1));
    const imageSize = screen.getByTestId("train-image-size") as HTMLInputElement;
    expect(imageSize.value).toBe("");
    expect(imageSize.placeholder).toBe("28");
    expect(imageSize.min).toBe("8");
    expect((screen.getByTestId("train-epochs") as HTMLInputElement).placeholder).toBe("12");
    expect((screen.getByTestId("train-hflip") as HTMLInputElement).checked).toBe(true);
    expect(screen.getByRole("option", { name: "default (cosine)" })).toBeTruthy();
    expect((screen.getByTestId("train-learning-rate") as HTMLInputElement).placeholder).toBe("0.001");
    expect((screen.getByTestId("train-advanced") as HTMLDetailsElement).open).toBe(false);
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j2"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({ spec: { dataset: "fish", architecture: "small-cnn" } });
  });

  it("sends every field set, with the proto's JSON names and enum strings", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j3" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "v1 (150 images)" })).toHaveLength(1));
    await waitFor(() => expect(screen.getAllByRole("option", { name: "fish" })).toHaveLength(2)); // dataset and base model
    const change = (id: string, value: string) => fireEvent.change(screen.getByTestId(id), { target: { value } });
    change("train-snapshot", "1");
    change("train-model", "fish-v2");
    change("train-epochs", "3");
    change("train-batch-size", "32");
    change("train-learning-rate", "0.01");
    change("train-image-size", "24");
    change("train-optimizer", "OPTIMIZER_ADAMW");
    change("train-schedule", "LEARNING_RATE_SCHEDULE_COSINE");
    change("train-weight-decay", "0.0001");
    change("train-patience", "3");
    change("train-validation-fraction", "0.25");
    change("train-seed", "9007199254740993");
    change("train-channels", "1");
    fireEvent.click(screen.getByTestId("train-hflip")); // off: the server's default is on
    fireEvent.click(screen.getByTestId("train-vflip"));
    change("train-crop", "0.6");
    change("train-jitter", "0.2");
    change("train-base-model", "fish");
    await waitFor(() => expect(screen.getAllByRole("option", { name: /^v2 · resnet-small/ })).toHaveLength(1));
    change("train-base-version", "1");
    change("train-promotion", "PROMOTION_POLICY_IF_BETTER");
    change("train-backend", "go");
    expect(screen.getByText(/^Advanced/).textContent).toBe("Advanced (13 set)");
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j3"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({
      spec: {
        dataset: "fish", snapshotVersion: 1, model: "fish-v2", epochs: 3, batchSize: 32, // the base names the network
        learningRate: 0.01, imageSize: 24, channels: 1, optimizer: "OPTIMIZER_ADAMW", schedule: "LEARNING_RATE_SCHEDULE_COSINE",
        weightDecay: 0.0001, validationFraction: 0.25, seed: "9007199254740993", earlyStoppingPatience: 3,
        augmentation: { verticalFlip: true, cropMinScale: 0.6, colorJitter: 0.2 },
        baseVersion: { model: "fish", version: 1 }, promotion: "PROMOTION_POLICY_IF_BETTER", backend: "go",
      },
    });
  });

  it("opens the advanced fields when one of them is invalid", async () => {
    window.history.replaceState(null, "", "/training");
    mockFetch(common);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "small-cnn" })).toHaveLength(1));
    const advanced = screen.getByTestId("train-advanced") as HTMLDetailsElement;
    const fraction = screen.getByTestId("train-validation-fraction") as HTMLInputElement;
    fireEvent.change(fraction, { target: { value: "0.9" } });
    expect(advanced.open).toBe(false);
    expect(fraction.checkValidity()).toBe(false); // fires invalid, as the browser does on submit
    expect(advanced.open).toBe(true);
  });

  it("fine-tunes from the latest version by default, leaving the network and input to the base", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j4" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "fish" })).toHaveLength(2));
    await waitFor(() => expect(screen.getAllByRole("option", { name: "small-cnn" })).toHaveLength(1));
    fireEvent.change(screen.getByTestId("train-base-model"), { target: { value: "fish" } });
    await waitFor(() => expect((screen.getByTestId("train-base-version") as HTMLSelectElement).value).toBe("2"));
    expect(screen.getByTestId("train-base-note").textContent).toContain("resnet-small, 32×32×3");
    fireEvent.change(screen.getByTestId("train-base-version"), { target: { value: "2" } });
    await waitFor(() => expect((screen.getByTestId("train-architecture") as HTMLSelectElement).disabled).toBe(true));
    expect(screen.getByRole("option", { name: "resnet-small (fine-tuning)" })).toBeTruthy();
    expect((screen.getByTestId("train-image-size") as HTMLInputElement).placeholder).toBe("32");
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j4"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({ spec: { dataset: "fish", baseVersion: { model: "fish", version: 2 } } });
  });

  it("trains only a new head on the base's frozen backbone, without the default augmentation", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j5" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "fish" })).toHaveLength(2));
    const headOnly = screen.getByTestId("train-head-only") as HTMLInputElement;
    expect(headOnly.disabled).toBe(true); // needs a base version
    fireEvent.change(screen.getByTestId("train-base-model"), { target: { value: "fish" } });
    await waitFor(() => expect((screen.getByTestId("train-base-version") as HTMLSelectElement).value).toBe("2"));
    expect((screen.getByTestId("train-hflip") as HTMLInputElement).checked).toBe(true);
    fireEvent.click(headOnly);
    expect((screen.getByTestId("train-hflip") as HTMLInputElement).checked).toBe(false);
    expect(screen.getByTestId("train-base-note").textContent).toContain("runs again on the augmented images every epoch");
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j5"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({ spec: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_HEAD" } });
  });

  it("trains the base's last stages with a warm-up, a lower backbone rate and frozen batch norm", async () => {
    window.history.replaceState(null, "", "/training");
    const calls = mockFetch([...common, { method: "POST", path: "/v1/jobs", body: { job: { id: "j6" } } }]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "fish" })).toHaveLength(2));
    const stages = screen.getByTestId("train-unfrozen-stages") as HTMLInputElement;
    expect(stages.disabled).toBe(true); // needs a base version
    fireEvent.change(screen.getByTestId("train-base-model"), { target: { value: "fish" } });
    await waitFor(() => expect((screen.getByTestId("train-base-version") as HTMLSelectElement).value).toBe("2"));
    fireEvent.change(stages, { target: { value: "2" } });
    expect((screen.getByTestId("train-hflip") as HTMLInputElement).checked).toBe(false);
    expect(screen.getByTestId("train-base-note").textContent).toContain("cut before its last 2 stage(s)");
    fireEvent.change(screen.getByTestId("train-warmup"), { target: { value: "1" } });
    fireEvent.change(screen.getByTestId("train-backbone-lr-scale"), { target: { value: "0.1" } });
    fireEvent.change(screen.getByTestId("train-batch-norm"), { target: { value: "BATCH_NORM_FROZEN" } });
    fireEvent.click(screen.getByTestId("train-start"));
    await waitFor(() => expect(window.location.search).toBe("?job=j6"));
    const body = JSON.parse(calls.find((c) => c.method === "POST")!.body!);
    expect(body).toEqual({ spec: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_LAST_STAGES", unfrozenStages: 2,
      warmupEpochs: 1, backboneLearningRateScale: 0.1, batchNorm: "BATCH_NORM_FROZEN" } });
  });

  it("shows a refused start as the server's message", async () => {
    window.history.replaceState(null, "", "/training");
    mockFetch([
      ...common,
      {
        method: "POST", path: "/v1/jobs", status: 400,
        body: { code: 3, message: 'spec.imageSize = 4096: architecture "small-cnn" takes images from 8x8 to 128x128 pixels, got 4096x4096', details: [] },
      },
    ]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "small-cnn" })).toHaveLength(1));
    fireEvent.change(screen.getByTestId("train-image-size"), { target: { value: "4096" } });
    fireEvent.click(screen.getByTestId("train-start"));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Invalid request: spec.imageSize = 4096");
    expect(window.location.search).toBe("");
  });

  it("shows each epoch's learning rate and the jobs' optimizer and schedule", async () => {
    const tuned = {
      ...job, state: "JOB_STATE_SUCCEEDED",
      spec: { ...job.spec, optimizer: "OPTIMIZER_SGD", schedule: "LEARNING_RATE_SCHEDULE_STEP", learningRate: 0.1, augmentation: { horizontalFlip: true }, baseVersion: { model: "fish", version: 1 } },
    };
    mockFetch([
      { path: "/v1/jobs", body: { jobs: [tuned, { ...job, id: "j0" }] } },
      { path: "/v1/jobs/j1", body: { job: tuned } },
      ...common,
      {
        path: "/v1/jobs/j1:watch",
        body: ndjson([
          { sequence: 1, epoch: { epoch: 1, trainLoss: 1, valLoss: 0.9, learningRate: 0.1, duration: "0.2s" } },
          { sequence: 2, epoch: { epoch: 2, trainLoss: 0.5, valLoss: 0.4, learningRate: 0.01, duration: "0.2s" } },
          { sequence: 3, state: { state: "JOB_STATE_SUCCEEDED" } },
        ]),
      },
    ]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getByTestId("job-state").textContent).toBe("succeeded"));
    expect(screen.getByRole("columnheader", { name: "learning rate" })).toBeTruthy();
    expect(screen.getByRole("cell", { name: "0.01" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "learning rate" })).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId("job-spec").textContent).toContain("SGD · step lr 0.1"));
    expect(screen.getByTestId("job-spec").textContent).toContain("fine-tuned from fish v1 · augmentation: horizontal flip");
    const summaries = (await screen.findAllByTestId("job-spec-summary")).map((c) => c.textContent);
    expect(summaries).toEqual(["SGD · step lr 0.1 …", "Adam · constant lr 0.001"]);
  });

  it("leaves the learning-rate column and chart out when the job does not report it", async () => {
    mockFetch([
      ...common,
      { path: "/v1/jobs/j1:watch", body: ndjson([{ sequence: 1, epoch: { epoch: 1, trainLoss: 1, valLoss: 0.9, duration: "0.2s" } }]) },
    ]);
    render(<TrainingPage />);
    await waitFor(() => expect(screen.getByTestId("job-charts").getAttribute("data-epochs")).toBe("1"));
    expect(screen.queryByRole("columnheader", { name: "learning rate" })).toBeNull();
    expect(screen.queryByRole("img", { name: "learning rate" })).toBeNull();
  });
});
