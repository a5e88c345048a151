import { describe, expect, it } from "vitest";
import { emptyForm, jobSpec, learningRate, optimizerSummary, specExtras } from "./jobspec";

describe("jobSpec", () => {
  it.each([
    { name: "an empty form sends the dataset alone", form: {}, want: { dataset: "fish" } },
    {
      name: "zeros, blanks and text that is no number are left unset",
      form: { snapshot: "0", epochs: "0", batchSize: " ", learningRate: "abc", imageSize: "", seed: "-0", model: "  ", weightDecay: "0", cropMinScale: "0" },
      want: { dataset: "fish" },
    },
    { name: "numbers are sent as numbers", form: { epochs: "7", learningRate: "3e-4", validationFraction: ".1" }, want: { dataset: "fish", epochs: 7, learningRate: 0.0003, validationFraction: 0.1 } },
    { name: "int64 fields are numbers, and strings beyond 2^53 to keep every digit", form: { snapshot: "12", seed: "-9223372036854775808" }, want: { dataset: "fish", snapshotVersion: 12, seed: "-9223372036854775808" } },
    { name: "one augmentation sends only that one", form: { verticalFlip: true }, want: { dataset: "fish", augmentation: { verticalFlip: true } } },
    { name: "a base model without a version is not sent", form: { baseModel: "fish" }, want: { dataset: "fish" } },
    { name: "enums are sent by name", form: { optimizer: "OPTIMIZER_SGD", schedule: "LEARNING_RATE_SCHEDULE_STEP", promotion: "PROMOTION_POLICY_ALWAYS" }, want: { dataset: "fish", optimizer: "OPTIMIZER_SGD", schedule: "LEARNING_RATE_SCHEDULE_STEP", promotion: "PROMOTION_POLICY_ALWAYS" } },
  ] as const)("$name", ({ form, want }) => {
    expect(jobSpec({ ...emptyForm, ...form }, "fish")).toEqual(want);
  });

  // The server flips by default: augmentation is sent only when the form
  // departs from that, and then in full ({} turns it off).
  const defaults = { epochs: 12, augmentation: { horizontalFlip: true } };
  it.each([
    { name: "untouched augmentation is left to the server", form: {}, want: { dataset: "fish" } },
    { name: "ticking the default on again sends nothing", form: { horizontalFlip: true }, want: { dataset: "fish" } },
    { name: "unticking the default flip sends an empty augmentation", form: { horizontalFlip: false }, want: { dataset: "fish", augmentation: {} } },
    { name: "adding a crop keeps the default flip", form: { cropMinScale: "0.5" }, want: { dataset: "fish", augmentation: { horizontalFlip: true, cropMinScale: 0.5 } } },
    { name: "head-only sends no augmentation: the server's default there is none", form: { baseModel: "fish", baseVersion: "2", headOnly: true }, want: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_HEAD" } },
    { name: "head-only with a flip sends it", form: { baseModel: "fish", baseVersion: "2", headOnly: true, horizontalFlip: true }, want: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_HEAD", augmentation: { horizontalFlip: true } } },
    { name: "head-only without a base is not sent", form: { headOnly: true }, want: { dataset: "fish" } },
    { name: "last stages send the count and no augmentation", form: { baseModel: "fish", baseVersion: "2", unfrozenStages: "2" }, want: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_LAST_STAGES", unfrozenStages: 2 } },
    { name: "last stages without a base are not sent", form: { unfrozenStages: "2" }, want: { dataset: "fish" } },
    { name: "head-only wins over a stage count", form: { baseModel: "fish", baseVersion: "2", headOnly: true, unfrozenStages: "2" }, want: { dataset: "fish", baseVersion: { model: "fish", version: 2 }, trainLayers: "TRAIN_LAYERS_HEAD" } },
    { name: "discriminative settings are sent", form: { warmupEpochs: "2", backboneLrScale: "0.1", batchNorm: "BATCH_NORM_FROZEN" }, want: { dataset: "fish", warmupEpochs: 2, backboneLearningRateScale: 0.1, batchNorm: "BATCH_NORM_FROZEN" } },
  ] as const)("with server defaults: $name", ({ form, want }) => {
    expect(jobSpec({ ...emptyForm, ...form }, "fish", undefined, defaults)).toEqual(want);
  });
});

describe("spec summaries", () => {
  it.each([
    [undefined, "–"], [0.001, "0.001"], [0.1, "0.1"], [0.0123456, "0.0123"], [0.0001, "1e-4"], [3.16e-5, "3.16e-5"], [0, "0"],
  ])("learningRate(%s) = %s", (v, want) => {
    expect(learningRate(v)).toBe(want);
  });

  it("reads an unset optimizer and schedule as the server does", () => {
    expect(optimizerSummary({})).toBe("Adam · constant lr");
    expect(optimizerSummary({ learningRate: 0.003, optimizer: "OPTIMIZER_ADAMW", schedule: "LEARNING_RATE_SCHEDULE_COSINE", weightDecay: 0.01 }))
      .toBe("AdamW · cosine lr 0.003 · weight decay 0.01");
  });

  it("lists fine-tuning, augmentation, early stopping and seed", () => {
    expect(specExtras({ seed: 0, augmentation: { cropMinScale: 1 } })).toEqual([]);
    expect(specExtras({
      baseVersion: { model: "fish", version: 3 }, augmentation: { horizontalFlip: true, cropMinScale: 0.5, colorJitter: 0.1 },
      earlyStoppingPatience: 2, seed: 42,
    })).toEqual(["fine-tuned from fish v3", "augmentation: horizontal flip, crop ≥ 0.5, colour jitter 0.1", "early stopping after 2", "seed 42"]);
    expect(specExtras({ baseVersion: { model: "fish", version: 3 }, trainLayers: "TRAIN_LAYERS_HEAD" })).toEqual(["new head on the frozen backbone of fish v3"]);
  });
});
