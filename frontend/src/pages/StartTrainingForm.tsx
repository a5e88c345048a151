import { useEffect, useRef, useState } from "react";
import { api, num, ok } from "../api/client";
import { defaultAugmentation, emptyForm, isPartial, jobSpec, optimizerNames, scheduleNames } from "../api/jobspec";
import type { TrainForm } from "../api/jobspec";
import { ErrorBanner } from "../components/ErrorBanner";
import { useLoad } from "../hooks";
import { pct } from "../format";

// StartTrainingForm starts a job: the basics in view, every other JobSpec
// field under "Advanced". Empty fields are left out of the request so the
// server's defaults apply; the placeholders show those defaults.
export function StartTrainingForm({ onStarted }: { onStarted: (id: string) => void }) {
  const datasets = useLoad(async () => (await ok(api.GET("/v1/datasets", { params: { query: { pageSize: 100 } } }))).datasets ?? [], []);
  const catalogue = useLoad(async () => await ok(api.GET("/v1/architectures")), []);
  const archs = { data: catalogue.data?.architectures, error: catalogue.error };
  // What the server gives unset fields, shown as placeholders.
  const defaults = catalogue.data?.defaults;
  const models = useLoad(async () => (await ok(api.GET("/v1/models", { params: { query: { pageSize: 100 } } }))).models ?? [], []);
  const [dataset, setDataset] = useState("");
  const [architecture, setArchitecture] = useState("");
  const [f, setForm] = useState<TrainForm>(emptyForm);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  // The browser cannot point at an invalid field inside a closed <details>
  // and would refuse to submit without a word: open it first. (invalid does
  // not bubble, hence the capturing listener.)
  useEffect(() => {
    const el = formRef.current;
    if (!el) return;
    const open = (e: Event) => {
      const details = (e.target as Element).closest("details");
      if (details) details.open = true;
    };
    el.addEventListener("invalid", open, true);
    return () => el.removeEventListener("invalid", open, true);
  }, []);
  const set = <K extends keyof TrainForm>(k: K, v: TrainForm[K]) => setForm((prev) => ({ ...prev, [k]: v }));
  // text binds an input or select to a text field of the form.
  const text = (k: TextField) => ({
    value: f[k],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm((prev) => ({ ...prev, [k]: e.target.value })),
  });

  const ds = dataset || datasets.data?.[0]?.name || "";
  const snaps = useLoad(async () => ds ? (await ok(api.GET("/v1/datasets/{dataset}/snapshots", { params: { path: { dataset: ds } } }))).snapshots ?? [] : [], [ds]);
  const arch = archs.data?.find((a) => a.name === architecture) ?? archs.data?.[0];
  const baseVersions = useLoad(async () => f.baseModel
    ? ((await ok(api.GET("/v1/models/{model}/versions", { params: { path: { model: f.baseModel }, query: { pageSize: 100 } } }))).versions ?? [])
      .sort((a, b) => num(b.version) - num(a.version))
    : [], [f.baseModel]);
  const base = f.baseModel ? baseVersions.data?.find((v) => String(v.version) === f.baseVersion) ?? baseVersions.data?.[0] : undefined;
  const form: TrainForm = { ...f, baseVersion: base?.version !== undefined ? String(base.version) : "" };
  // A fine-tuning job takes its base version's network and input (which may
  // be an uploaded model no architecture here names), so it sends none.
  const spec = jobSpec(form, ds, base ? undefined : arch?.name, defaults);
  // Unticked boxes show what the server does with them (no augmentation
  // for a head-only job).
  const defAug = defaultAugmentation(form, defaults);
  const partial = isPartial(form);
  // How many advanced fields are set, each augmentation counted apart.
  const advancedSet = Object.keys(spec).filter((k) => !basicFields.includes(k) && k !== "augmentation").length +
    Object.keys(spec.augmentation ?? {}).length;

  const start = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await ok(api.POST("/v1/jobs", { body: { spec } }));
      if (r.job?.id) onStarted(r.job.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={start} ref={formRef}>
      <h2>Train a model</h2>
      <ErrorBanner error={datasets.error ?? archs.error} />
      <div className="grid-form">
        <label>Dataset
          <select value={ds} onChange={(e) => { setDataset(e.target.value); set("snapshot", "0"); }} data-testid="train-dataset">
            {(datasets.data ?? []).map((d) => <option key={d.name} value={d.name}>{d.name}</option>)}
          </select>
        </label>
        <label>Snapshot
          <select {...text("snapshot")} data-testid="train-snapshot">
            <option value="0">new snapshot</option>
            {(snaps.data ?? []).map((s) => <option key={s.version} value={s.version}>v{s.version} ({num(s.imageCount)} images)</option>)}
          </select>
        </label>
        <label>Model name
          <input {...text("model")} placeholder={ds || "model"} data-testid="train-model" />
        </label>
        <label>Architecture
          {base ? (
            <select value="base" disabled data-testid="train-architecture">
              <option value="base">{base.architecture || "the base version's"} (fine-tuning)</option>
            </select>
          ) : (
            <select value={arch?.name ?? ""} onChange={(e) => setArchitecture(e.target.value)} data-testid="train-architecture">
              {(archs.data ?? []).map((a) => <option key={a.name} value={a.name}>{a.name}{num(a.parameters) > 0 ? ` (${num(a.parameters).toLocaleString()} parameters)` : ""}</option>)}
            </select>
          )}
        </label>
        <label>Epochs<input type="number" min={1} step={1} {...text("epochs")} placeholder={defaults?.epochs !== undefined ? String(defaults.epochs) : ""} data-testid="train-epochs" /></label>
        <label>Batch size<input type="number" min={1} step={1} {...text("batchSize")} placeholder={defaults?.batchSize !== undefined ? String(defaults.batchSize) : ""} data-testid="train-batch-size" /></label>
        <label>Learning rate<input type="number" min={0} step="any" {...text("learningRate")} placeholder={defaults?.learningRate !== undefined ? String(defaults.learningRate) : ""} data-testid="train-learning-rate" /></label>
        <label>Image size
          <input type="number" min={(!base && arch?.minImageSize) || 1} step={1} {...text("imageSize")}
            placeholder={base ? String(base.inputSpec?.height ?? "the base's") : arch?.defaultImageSize ? String(arch.defaultImageSize) : "per architecture"} data-testid="train-image-size" />
          {!base && arch?.minImageSize ? <small className="muted">pixels a side, at least {arch.minImageSize}</small> : null}
        </label>
      </div>
      {arch?.description && <p className="muted">{arch.description}</p>}
      <details className="advanced" data-testid="train-advanced">
        <summary>Advanced{advancedSet > 0 ? ` (${advancedSet} set)` : ""}</summary>
        <fieldset className="grid-form">
          <legend>Optimisation</legend>
          <label>Optimizer
            <select {...text("optimizer")} data-testid="train-optimizer">
              <option value="">default{defaults?.optimizer ? ` (${optimizerNames[defaults.optimizer] ?? defaults.optimizer})` : ""}</option>
              <option value="OPTIMIZER_ADAM">Adam</option>
              <option value="OPTIMIZER_ADAMW">AdamW (decoupled weight decay)</option>
              <option value="OPTIMIZER_SGD">SGD with momentum</option>
            </select>
          </label>
          <label>Learning-rate schedule
            <select {...text("schedule")} data-testid="train-schedule">
              <option value="">default{defaults?.schedule ? ` (${scheduleNames[defaults.schedule] ?? defaults.schedule})` : ""}</option>
              <option value="LEARNING_RATE_SCHEDULE_CONSTANT">constant</option>
              <option value="LEARNING_RATE_SCHEDULE_COSINE">cosine decay to zero</option>
              <option value="LEARNING_RATE_SCHEDULE_STEP">step (×0.1 at 50% and 75%)</option>
            </select>
          </label>
          <label>Weight decay<input type="number" min={0} step="any" {...text("weightDecay")} placeholder="0 (none)" data-testid="train-weight-decay" /></label>
          <label>Early-stopping patience
            <input type="number" min={0} step={1} {...text("earlyStoppingPatience")} placeholder="off" data-testid="train-patience" />
            <small className="muted">epochs without a better validation accuracy</small>
          </label>
          <label>Warm-up epochs
            <input type="number" min={0} step={1} {...text("warmupEpochs")} placeholder="0 (none)" data-testid="train-warmup" />
            <small className="muted">linear ramp of the learning rate before the schedule</small>
          </label>
          <label>Backbone learning-rate scale
            <input type="number" min={0} max={1} step="any" {...text("backboneLrScale")} placeholder="1 (one rate)" data-testid="train-backbone-lr-scale" />
            <small className="muted">fraction of the head's rate, in (0, 1]</small>
          </label>
          <label>Batch norm
            <select {...text("batchNorm")} data-testid="train-batch-norm">
              <option value="">default (update; frozen for imported models)</option>
              <option value="BATCH_NORM_FROZEN">frozen statistics</option>
              <option value="BATCH_NORM_UPDATE">update statistics</option>
            </select>
          </label>
        </fieldset>
        <fieldset className="grid-form">
          <legend>Data</legend>
          <label>Validation fraction
            <input type="number" min={0} max={0.5} step="any" {...text("validationFraction")} placeholder={defaults?.validationFraction !== undefined ? String(defaults.validationFraction) : ""} data-testid="train-validation-fraction" />
            <small className="muted">of the train split, when the snapshot has no validation split</small>
          </label>
          <label>Seed<input type="number" step={1} {...text("seed")} placeholder="0" data-testid="train-seed" /></label>
          <label>Channels
            <select {...text("channels")} data-testid="train-channels">
              <option value="">default{arch?.defaultChannels ? ` (${channelNames[arch.defaultChannels] ?? arch.defaultChannels})` : ""}</option>
              <option value="1">1 (grayscale)</option>
              <option value="3">3 (RGB)</option>
            </select>
          </label>
        </fieldset>
        <fieldset className="grid-form">
          <legend>Augmentation</legend>
          <label className="check"><input type="checkbox" checked={f.horizontalFlip ?? !!defAug.horizontalFlip} onChange={(e) => set("horizontalFlip", e.target.checked)} data-testid="train-hflip" /> horizontal flip</label>
          <label className="check"><input type="checkbox" checked={f.verticalFlip ?? !!defAug.verticalFlip} onChange={(e) => set("verticalFlip", e.target.checked)} data-testid="train-vflip" /> vertical flip</label>
          <label>Random crop, min scale
            <input type="number" min={0} max={1} step="any" {...text("cropMinScale")} placeholder={defAug.cropMinScale ? String(defAug.cropMinScale) : "off"} data-testid="train-crop" />
            <small className="muted">smallest area fraction kept, in (0, 1]</small>
          </label>
          <label>Colour jitter
            <input type="number" min={0} step="any" {...text("colorJitter")} placeholder={defAug.colorJitter ? String(defAug.colorJitter) : "off"} data-testid="train-jitter" />
            <small className="muted">largest relative change of brightness, contrast, saturation</small>
          </label>
        </fieldset>
        <fieldset className="grid-form">
          <legend>Fine-tune from</legend>
          <label>Model
            <select value={f.baseModel} onChange={(e) => setForm((prev) => ({ ...prev, baseModel: e.target.value, baseVersion: "" }))} data-testid="train-base-model">
              <option value="">none (from scratch)</option>
              {(models.data ?? []).map((m) => <option key={m.name} value={m.name}>{m.name}</option>)}
            </select>
          </label>
          <label>Version
            <select value={base?.version ?? ""} onChange={(e) => set("baseVersion", e.target.value)} disabled={!f.baseModel} data-testid="train-base-version">
              {!f.baseModel && <option value="">–</option>}
              {(f.baseModel ? baseVersions.data ?? [] : []).map((v) => (
                <option key={v.version} value={v.version}>
                  v{v.version} · {v.architecture}{v.metrics?.testAccuracy ? ` · ${pct(v.metrics.testAccuracy)}` : ""}{v.aliases?.length ? ` (${v.aliases.join(", ")})` : ""}
                </option>
              ))}
            </select>
          </label>
          <label className="check">
            <input type="checkbox" checked={f.headOnly && !!base} disabled={!base} onChange={(e) => set("headOnly", e.target.checked)} data-testid="train-head-only" />
            {" "}train only a new head (freeze the backbone)
          </label>
          <label>Unfrozen stages
            <input type="number" min={0} step={1} {...text("unfrozenStages")} disabled={!base || f.headOnly} placeholder="all layers" data-testid="train-unfrozen-stages" />
            <small className="muted">train only the last N stages (resolutions) and the head</small>
          </label>
          {base && !f.headOnly && partial && (
            <p className="muted wide" data-testid="train-base-note">
              {base.model} v{base.version}'s network ({base.architecture}) is cut before its last {f.unfrozenStages} stage(s), found where its
              resolution changes: ONNX Runtime computes the frozen part once per image (cached for later jobs on the same images), and the
              rest trains with the classification layer. The export is the whole network. No augmentation unless set above.
            </p>
          )}
          {base && !f.headOnly && !partial && (
            <p className="muted wide" data-testid="train-base-note">
              Starts from {base.model} v{base.version}'s weights with its network ({base.architecture}
              {base.inputSpec?.height ? `, ${base.inputSpec.height}×${base.inputSpec.width}×${base.inputSpec.channels}` : ""}); a new
              classification head when the dataset's labels differ. Uploaded ONNX models are imported and train on the server's backend.
            </p>
          )}
          {base && f.headOnly && (
            <p className="muted wide" data-testid="train-base-note">
              {base.model} v{base.version}'s network ({base.architecture}) up to its classification layer stays frozen: ONNX Runtime
              computes its features once per image (cached for later jobs on the same images), and only a new linear head trains on
              them. No augmentation unless set above; with augmentation, the backbone runs again on the augmented images every epoch.
            </p>
          )}
          <ErrorBanner error={models.error ?? baseVersions.error} />
        </fieldset>
        <fieldset className="grid-form">
          <legend>When done</legend>
          <label>Promotion
            <select {...text("promotion")} data-testid="train-promotion">
              <option value="">never (default)</option>
              <option value="PROMOTION_POLICY_IF_BETTER">if better than production</option>
              <option value="PROMOTION_POLICY_ALWAYS">always</option>
            </select>
          </label>
          <label>Compute backend
            <select {...text("backend")} data-testid="train-backend">
              <option value="">the server's default</option>
              <option value="onnx">onnx</option>
              <option value="go">go (pure Go)</option>
            </select>
          </label>
        </fieldset>
      </details>
      <button type="submit" disabled={busy || !ds} data-testid="train-start">Start training</button>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </form>
  );
}

type TextField = { [K in keyof TrainForm]: TrainForm[K] extends string ? K : never }[keyof TrainForm];

// The spec fields in view above "Advanced".
const basicFields = ["dataset", "snapshotVersion", "model", "architecture", "epochs", "batchSize", "learningRate", "imageSize"];

const channelNames: Record<number, string> = { 1: "1, grayscale", 3: "3, RGB" };
