import type { S } from "./client";
import { num } from "./client";

// TrainForm is the Training form's state. Numbers are kept as the inputs'
// text: an empty field (or 0) is left out of the request so the server's
// default applies.
export type TrainForm = {
  snapshot: string;
  model: string;
  epochs: string;
  batchSize: string;
  learningRate: string;
  imageSize: string;
  channels: string;
  optimizer: S<"v1Optimizer"> | "";
  schedule: S<"v1LearningRateSchedule"> | "";
  weightDecay: string;
  validationFraction: string;
  seed: string;
  earlyStoppingPatience: string;
  // null: as the server's default augmentation.
  horizontalFlip: boolean | null;
  verticalFlip: boolean | null;
  cropMinScale: string;
  colorJitter: string;
  baseModel: string;
  baseVersion: string;
  // Train only a new head on the base version's frozen backbone.
  headOnly: boolean;
  // Train the base version's last N stages and its head (not with headOnly).
  unfrozenStages: string;
  warmupEpochs: string;
  // The backbone's learning rate as a fraction of the head's, in (0, 1].
  backboneLrScale: string;
  batchNorm: S<"v1BatchNorm"> | "";
  backend: string;
  promotion: S<"v1PromotionPolicy"> | "";
};

export const emptyForm: TrainForm = {
  snapshot: "0", model: "", epochs: "", batchSize: "", learningRate: "", imageSize: "", channels: "",
  optimizer: "", schedule: "", weightDecay: "", validationFraction: "", seed: "", earlyStoppingPatience: "",
  horizontalFlip: null, verticalFlip: null, cropMinScale: "", colorJitter: "",
  baseModel: "", baseVersion: "", headOnly: false, unfrozenStages: "", warmupEpochs: "", backboneLrScale: "", batchNorm: "",
  backend: "", promotion: "",
};


// set reads a numeric field: undefined when empty, zero or not a number.
function set(text: string): number | undefined {
  const v = Number(text.trim());
  return text.trim() === "" || !Number.isFinite(v) || v === 0 ? undefined : v;
}

// int64 fields are JSON numbers up to 2^53; beyond, the server takes the
// decimal string, which keeps every digit of a large seed.
function set64(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t) || /^-?0+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : (t as unknown as number);
}

// jobSpec is the StartTraining spec for the form: only the fields set, with
// the proto's JSON names and enum strings.
//
// Augmentation is sent only when it differs from the server's default
// (`defaults`, from /v1/architectures; none for a head-only job), and then
// in full: an absent message takes the default, an empty one turns
// augmentation off.
export function jobSpec(f: TrainForm, dataset: string, architecture?: string, defaults?: Partial<S<"v1JobSpec">>): S<"v1JobSpec"> {
  const spec: S<"v1JobSpec"> = {
    dataset,
    snapshotVersion: set64(f.snapshot),
    model: f.model.trim() || undefined,
    architecture: architecture || undefined,
    epochs: set(f.epochs),
    batchSize: set(f.batchSize),
    learningRate: set(f.learningRate),
    imageSize: set(f.imageSize),
    channels: set(f.channels),
    optimizer: f.optimizer || undefined,
    schedule: f.schedule || undefined,
    weightDecay: set(f.weightDecay),
    validationFraction: set(f.validationFraction),
    seed: set64(f.seed),
    earlyStoppingPatience: set(f.earlyStoppingPatience),
    warmupEpochs: set(f.warmupEpochs),
    backboneLearningRateScale: set(f.backboneLrScale),
    batchNorm: f.batchNorm || undefined,
    backend: f.backend || undefined,
    promotion: f.promotion || undefined,
  };
  const headOnly = isHeadOnly(f);
  const def = defaultAugmentation(f, defaults);
  const augmentation: S<"v1Augmentation"> = dropUnset({
    horizontalFlip: (f.horizontalFlip ?? def.horizontalFlip) || undefined,
    verticalFlip: (f.verticalFlip ?? def.verticalFlip) || undefined,
    cropMinScale: set(f.cropMinScale) ?? (def.cropMinScale || undefined),
    colorJitter: set(f.colorJitter) ?? (def.colorJitter || undefined),
  });
  const same = (["horizontalFlip", "verticalFlip", "cropMinScale", "colorJitter"] as const)
    .every((k) => (augmentation[k] || undefined) === (def[k] || undefined));
  if (!same) spec.augmentation = augmentation;
  const baseVersion = set64(f.baseVersion);
  if (f.baseModel && baseVersion) spec.baseVersion = { model: f.baseModel, version: baseVersion };
  if (headOnly) spec.trainLayers = "TRAIN_LAYERS_HEAD";
  if (isPartial(f)) {
    spec.trainLayers = "TRAIN_LAYERS_LAST_STAGES";
    spec.unfrozenStages = set(f.unfrozenStages);
  }
  return dropUnset(spec);
}

// isPartial: training the last stages needs a base version and a number
// of stages, and excludes head-only training.
export function isPartial(f: TrainForm): boolean {
  return !f.headOnly && !!f.baseModel && set64(f.baseVersion) !== undefined && (set(f.unfrozenStages) ?? 0) > 0;
}

// isHeadOnly: head-only training needs a base version.
export function isHeadOnly(f: TrainForm): boolean {
  return f.headOnly && !!f.baseModel && set64(f.baseVersion) !== undefined;
}

// defaultAugmentation is what the server augments with when the spec says
// nothing: its defaults, or nothing for a head-only or partial job (whose
// frozen part would otherwise run again every epoch).
export function defaultAugmentation(f: TrainForm, defaults?: Partial<S<"v1JobSpec">>): S<"v1Augmentation"> {
  return isHeadOnly(f) || isPartial(f) ? {} : defaults?.augmentation ?? {};
}

function dropUnset<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// learningRate prints a rate compactly: 0.001, 3.16e-5.
export function learningRate(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return v >= 0.001 || v === 0 ? String(Number(v.toPrecision(3))) : v.toExponential(2).replace(/\.?0+e/, "e");
}

export const optimizerNames: Record<string, string> = {
  OPTIMIZER_UNSPECIFIED: "Adam", OPTIMIZER_ADAM: "Adam", OPTIMIZER_ADAMW: "AdamW", OPTIMIZER_SGD: "SGD",
};
export const scheduleNames: Record<string, string> = {
  LEARNING_RATE_SCHEDULE_UNSPECIFIED: "constant", LEARNING_RATE_SCHEDULE_CONSTANT: "constant",
  LEARNING_RATE_SCHEDULE_COSINE: "cosine", LEARNING_RATE_SCHEDULE_STEP: "step",
};

// optimizerSummary names a spec's optimizer and schedule as the server reads
// them (unset is Adam with a constant rate): "AdamW · cosine lr 0.003".
export function optimizerSummary(spec: Partial<S<"v1JobSpec">>): string {
  const opt = optimizerNames[spec.optimizer ?? "OPTIMIZER_UNSPECIFIED"] ?? spec.optimizer;
  const sched = scheduleNames[spec.schedule ?? "LEARNING_RATE_SCHEDULE_UNSPECIFIED"] ?? spec.schedule;
  const lr = spec.learningRate ? ` ${learningRate(spec.learningRate)}` : "";
  const wd = spec.weightDecay ? ` · weight decay ${spec.weightDecay}` : "";
  return `${opt} · ${sched} lr${lr}${wd}`;
}

// specExtras lists what a spec sets beyond the basics: fine-tuning,
// augmentation, early stopping, seed.
export function specExtras(spec: Partial<S<"v1JobSpec">>): string[] {
  const out: string[] = [];
  if (spec.baseVersion?.model) {
    const base = `${spec.baseVersion.model} v${num(spec.baseVersion.version)}`;
    out.push(spec.trainLayers === "TRAIN_LAYERS_HEAD" ? `new head on the frozen backbone of ${base}`
      : spec.trainLayers === "TRAIN_LAYERS_LAST_STAGES" ? `last ${spec.unfrozenStages} stage(s) and head of ${base}`
        : `fine-tuned from ${base}`);
  }
  if (spec.warmupEpochs) out.push(`warm-up ${spec.warmupEpochs} epoch(s)`);
  if (spec.backboneLearningRateScale && spec.backboneLearningRateScale < 1) out.push(`backbone lr ×${spec.backboneLearningRateScale}`);
  if (spec.batchNorm === "BATCH_NORM_FROZEN") out.push("batch norm frozen");
  const a = spec.augmentation;
  const aug = [
    a?.horizontalFlip && "horizontal flip",
    a?.verticalFlip && "vertical flip",
    a?.cropMinScale && a.cropMinScale < 1 && `crop ≥ ${a.cropMinScale}`,
    a?.colorJitter && `colour jitter ${a.colorJitter}`,
  ].filter(Boolean);
  if (aug.length) out.push(`augmentation: ${aug.join(", ")}`);
  if (spec.earlyStoppingPatience) out.push(`early stopping after ${spec.earlyStoppingPatience}`);
  if (num(spec.seed) !== 0) out.push(`seed ${spec.seed}`);
  return out;
}
