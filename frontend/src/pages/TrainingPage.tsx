import { useEffect, useState } from "react";
import { api, num, ok } from "../api/client";
import type { S } from "../api/client";
import { applyEvent, fraction, initialView, terminalStates, watchJob } from "../api/jobs";
import type { JobView } from "../api/jobs";
import { describe } from "../api/errors";
import { ErrorBanner } from "../components/ErrorBanner";
import { LineChart } from "../components/LineChart";
import { Progress } from "../components/Progress";
import { useLoad } from "../hooks";
import { duration, enumLabel, pct, seconds, when } from "../format";
import { navigate, useQuery } from "../router";

export function TrainingPage() {
  const jobId = useQuery("job");
  const jobs = useLoad(async () => (await ok(api.GET("/v1/jobs", { params: { query: { pageSize: 50 } } }))).jobs ?? [], []);
  return (
    <section className="page training">
      <StartForm onStarted={(id) => { navigate(`/training?job=${encodeURIComponent(id)}`); void jobs.reload(); }} />
      {jobId && <LiveJob key={jobId} jobId={jobId} onEnd={jobs.reload} />}
      <div className="card">
        <h3>Jobs</h3>
        <ErrorBanner error={jobs.error} />
        {(jobs.data ?? []).length === 0 && !jobs.loading && <p className="muted">No training job yet.</p>}
        {(jobs.data ?? []).length > 0 && (
          <table data-testid="jobs">
            <thead><tr><th>job</th><th>dataset</th><th>architecture</th><th>state</th><th>epochs</th><th>test accuracy</th><th>result</th><th>created</th></tr></thead>
            <tbody>
              {(jobs.data ?? []).map((j) => (
                <tr key={j.id} className={j.id === jobId ? "selected" : undefined}>
                  <td><a href={`/training?job=${j.id}`} onClick={(e) => { e.preventDefault(); navigate(`/training?job=${j.id}`); }}>{j.id?.slice(0, 8)}</a></td>
                  <td>{j.spec?.dataset} v{num(j.spec?.snapshotVersion)}</td>
                  <td>{j.spec?.architecture}</td>
                  <td><span className={`state ${j.state}`}>{enumLabel(j.state, "JOB_STATE_")}</span></td>
                  <td>{j.epochs?.length ?? 0}/{j.spec?.epochs}</td>
                  <td>{j.testMetrics?.testAccuracy ? pct(j.testMetrics.testAccuracy) : "–"}</td>
                  <td>{j.result?.model ? <a href={`/models?m=${j.result.model}&v=${j.result.version}`} onClick={(e) => { e.preventDefault(); navigate(`/models?m=${j.result?.model}&v=${j.result?.version}`); }}>{j.result.model} v{j.result.version}</a> : "–"}</td>
                  <td>{when(j.createTime)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

function StartForm({ onStarted }: { onStarted: (id: string) => void }) {
  const datasets = useLoad(async () => (await ok(api.GET("/v1/datasets", { params: { query: { pageSize: 100 } } }))).datasets ?? [], []);
  const archs = useLoad(async () => (await ok(api.GET("/v1/architectures"))).architectures ?? [], []);
  const [dataset, setDataset] = useState("");
  const [snapshot, setSnapshot] = useState("0");
  const [model, setModel] = useState("");
  const [architecture, setArchitecture] = useState("");
  const [epochs, setEpochs] = useState(5);
  const [batchSize, setBatchSize] = useState(64);
  const [learningRate, setLearningRate] = useState(0.001);
  const [imageSize, setImageSize] = useState(0);
  const [flip, setFlip] = useState(false);
  const [cropMinScale, setCropMinScale] = useState(0);
  const [promotion, setPromotion] = useState<S<"v1PromotionPolicy">>("PROMOTION_POLICY_NEVER");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const ds = dataset || datasets.data?.[0]?.name || "";
  const snaps = useLoad(async () => ds ? (await ok(api.GET("/v1/datasets/{dataset}/snapshots", { params: { path: { dataset: ds } } }))).snapshots ?? [] : [], [ds]);
  const arch = archs.data?.find((a) => a.name === architecture) ?? archs.data?.[0];

  const start = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const augmentation = flip || cropMinScale > 0 ? { horizontalFlip: flip, cropMinScale } : undefined;
      const r = await ok(api.POST("/v1/jobs", {
        body: {
          spec: {
            dataset: ds, snapshotVersion: snapshot, model: model || undefined, architecture: arch?.name,
            epochs, batchSize, learningRate, imageSize: imageSize || undefined, augmentation, promotion,
          },
        },
      }));
      if (r.job?.id) onStarted(r.job.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={start}>
      <h2>Train a model</h2>
      <ErrorBanner error={datasets.error ?? archs.error} />
      <div className="grid-form">
        <label>Dataset
          <select value={ds} onChange={(e) => { setDataset(e.target.value); setSnapshot("0"); }} data-testid="train-dataset">
            {(datasets.data ?? []).map((d) => <option key={d.name} value={d.name}>{d.name}</option>)}
          </select>
        </label>
        <label>Snapshot
          <select value={snapshot} onChange={(e) => setSnapshot(e.target.value)} data-testid="train-snapshot">
            <option value="0">latest</option>
            {(snaps.data ?? []).map((s) => <option key={s.version} value={s.version}>v{s.version} ({num(s.imageCount)} images)</option>)}
          </select>
        </label>
        <label>Model name
          <input value={model} placeholder={ds || "model"} onChange={(e) => setModel(e.target.value)} data-testid="train-model" />
        </label>
        <label>Architecture
          <select value={arch?.name ?? ""} onChange={(e) => setArchitecture(e.target.value)} data-testid="train-architecture">
            {(archs.data ?? []).map((a) => <option key={a.name} value={a.name}>{a.name}{num(a.parameters) > 0 ? ` (${num(a.parameters).toLocaleString()} parameters)` : ""}</option>)}
          </select>
        </label>
        <label>Epochs<input type="number" min={1} value={epochs} onChange={(e) => setEpochs(Number(e.target.value))} data-testid="train-epochs" /></label>
        <label>Batch size<input type="number" min={1} value={batchSize} onChange={(e) => setBatchSize(Number(e.target.value))} /></label>
        <label>Learning rate<input type="number" step="any" min={0} value={learningRate} onChange={(e) => setLearningRate(Number(e.target.value))} /></label>
        <label>Image size
          <input type="number" min={0} value={imageSize} onChange={(e) => setImageSize(Number(e.target.value))} title="0: the architecture's default" />
          <small className="muted">{arch ? `default ${arch.defaultImageSize}, at least ${arch.minImageSize}` : ""}</small>
        </label>
        <label>Augmentation
          <span><input type="checkbox" checked={flip} onChange={(e) => setFlip(e.target.checked)} /> horizontal flip</span>
          <span>random crop, min scale <input type="number" step="0.05" min={0} max={1} value={cropMinScale} onChange={(e) => setCropMinScale(Number(e.target.value))} /></span>
        </label>
        <label>Promotion
          <select value={promotion} onChange={(e) => setPromotion(e.target.value as S<"v1PromotionPolicy">)} data-testid="train-promotion">
            <option value="PROMOTION_POLICY_NEVER">never</option>
            <option value="PROMOTION_POLICY_IF_BETTER">if better than production</option>
            <option value="PROMOTION_POLICY_ALWAYS">always</option>
          </select>
        </label>
      </div>
      {arch?.description && <p className="muted">{arch.description}</p>}
      <button type="submit" disabled={busy || !ds} data-testid="train-start">Start training</button>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </form>
  );
}

function LiveJob({ jobId, onEnd }: { jobId: string; onEnd: () => void }) {
  const [view, setView] = useState<JobView>(initialView());
  const [job, setJob] = useState<S<"v1Job"> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [streamNote, setStreamNote] = useState("");

  useEffect(() => {
    const abort = new AbortController();
    let current = initialView();
    (async () => {
      try {
        const j = await ok(api.GET("/v1/jobs/{jobId}", { params: { path: { jobId } } }));
        setJob(j.job ?? null);
      } catch (e) {
        setError(e);
        return;
      }
      // Follow the stream; if it drops before the job ends (a restart, a
      // proxy timeout), resume after the last event seen.
      for (let attempt = 0; !abort.signal.aborted; attempt++) {
        try {
          for await (const ev of watchJob(jobId, current.lastSequence, abort.signal)) {
            current = applyEvent(current, ev);
            setView(current);
            setStreamNote("");
          }
          if (terminalStates.includes(current.state)) break;
        } catch (e) {
          if (abort.signal.aborted) return;
          setStreamNote(`stream interrupted (${describe(e)}); reconnecting…`);
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (attempt + 1))));
      }
      if (!abort.signal.aborted) {
        const j = await ok(api.GET("/v1/jobs/{jobId}", { params: { path: { jobId } } })).catch(() => null);
        if (j?.job) setJob(j.job);
        onEnd();
      }
    })();
    return () => abort.abort();
  }, [jobId, onEnd]);

  const cancel = async () => {
    setError(null);
    try {
      await ok(api.POST("/v1/jobs/{jobId}:cancel", { params: { path: { jobId } }, body: {} }));
    } catch (e) {
      setError(e);
    }
  };
  const ended = terminalStates.includes(view.state);
  const p = view.progress;
  const eta = p?.eta ? seconds(p.eta) : undefined;
  const epochs = view.epochs;
  const showRate = epochs.some((e) => (e.imagesPerSecond ?? 0) > 0);
  return (
    <div className="card" data-testid="live-job">
      <h2>Job <code>{jobId.slice(0, 8)}</code> <span className={`state ${view.state}`} data-testid="job-state">{enumLabel(view.state, "JOB_STATE_")}</span></h2>
      {job?.spec && <p className="muted">{job.spec.dataset} v{num(job.spec.snapshotVersion)} · {job.spec.architecture} · {job.spec.epochs} epochs · batch {job.spec.batchSize} · lr {job.spec.learningRate}</p>}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {streamNote && <p className="muted">{streamNote}</p>}
      <Progress fraction={fraction(view)}
        label={ended ? enumLabel(view.state, "JOB_STATE_") : p ? `epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}${eta !== undefined ? `, ETA ${duration(eta)}` : ""}` : "waiting"} />
      {p && !ended && <p className="muted">{Math.round(p.imagesPerSecond ?? 0)} images/s · train loss {p.trainLoss?.toFixed(3)}</p>}
      {view.reason && view.state !== "JOB_STATE_SUCCEEDED" && <div className="error" role="alert">{view.reason}</div>}
      {!ended && <button type="button" onClick={cancel} className="danger" data-testid="job-cancel">Cancel</button>}
      <div className="charts" data-testid="job-charts" data-epochs={epochs.length}>
        <LineChart title="loss" series={[
          { name: "train", color: "#ffb347", values: epochs.map((e) => e.trainLoss) },
          { name: "validation", color: "#4fc3f7", values: epochs.map((e) => e.valLoss) },
        ]} />
        <LineChart title="accuracy" yMax={1} format={(v) => `${Math.round(v * 100)}%`} series={[
          { name: "train", color: "#ffb347", values: epochs.map((e) => e.trainAccuracy) },
          { name: "validation", color: "#4fc3f7", values: epochs.map((e) => e.valAccuracy) },
        ]} />
      </div>
      {epochs.length > 0 && (
        <table className="compact">
          <thead><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>val loss</th><th>val acc</th>{showRate && <th>images/s</th>}<th>time</th></tr></thead>
          <tbody>{epochs.map((e) => (
            <tr key={e.epoch} className={e.best ? "best" : undefined}>
              <td>{e.epoch}{e.best ? " ★" : ""}</td><td>{e.trainLoss?.toFixed(3)}</td><td>{pct(e.trainAccuracy)}</td>
              <td>{e.valLoss?.toFixed(3)}</td><td>{pct(e.valAccuracy)}</td>{showRate && <td>{Math.round(e.imagesPerSecond ?? 0)}</td>}<td>{duration(seconds(e.duration))}</td>
            </tr>
          ))}</tbody>
        </table>
      )}
      {view.evaluation && <p data-testid="job-evaluation">Test accuracy {pct(view.evaluation.testAccuracy)} on {num(view.evaluation.testExamples)} images.</p>}
      {view.registered && (
        <p data-testid="job-registered">Registered as{" "}
          <a href={`/models?m=${view.registered.model}&v=${view.registered.version}`}
            onClick={(e) => { e.preventDefault(); navigate(`/models?m=${view.registered?.model}&v=${view.registered?.version}`); }}>
            {view.registered.model} v{view.registered.version}
          </a>.
        </p>
      )}
      {view.logs.length > 0 && <details><summary>log</summary><pre className="log">{view.logs.join("\n")}</pre></details>}
    </div>
  );
}
