import { useEffect, useState } from "react";
import { api, num, ok } from "../api/client";
import { learningRate, optimizerSummary, specExtras } from "../api/jobspec";
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
import { StartTrainingForm } from "./StartTrainingForm";
import { useSession } from "../session";

export function TrainingPage() {
  const jobId = useQuery("job");
  const jobs = useLoad(async () => (await ok(api.GET("/v1/jobs", { params: { query: { pageSize: 50 } } }))).jobs ?? [], []);
  const canWrite = useSession().can("write");
  return (
    <section className="page training">
      {canWrite
        ? <StartTrainingForm onStarted={(id) => { navigate(`/training?job=${encodeURIComponent(id)}`); void jobs.reload(); }} />
        : <div className="card" data-testid="read-only"><h2>Training</h2><p className="muted">Starting and cancelling jobs need a token with the write scope.</p></div>}
      {jobId && <LiveJob key={jobId} jobId={jobId} onEnd={jobs.reload} />}
      <div className="card">
        <h3>Jobs</h3>
        <ErrorBanner error={jobs.error} />
        {(jobs.data ?? []).length === 0 && !jobs.loading && <p className="muted">No training job yet.</p>}
        {(jobs.data ?? []).length > 0 && (
          <table data-testid="jobs">
            <thead><tr><th>job</th><th>dataset</th><th>architecture</th><th>training</th><th>state</th><th>epochs</th><th>test accuracy</th><th>result</th><th>created</th></tr></thead>
            <tbody>
              {(jobs.data ?? []).map((j) => (
                <tr key={j.id} className={j.id === jobId ? "selected" : undefined}>
                  <td><a href={`/training?job=${j.id}`} onClick={(e) => { e.preventDefault(); navigate(`/training?job=${j.id}`); }}>{j.id?.slice(0, 8)}</a></td>
                  <td>{j.spec?.dataset} v{num(j.spec?.snapshotVersion)}</td>
                  <td>{j.spec?.architecture}</td>
                  <td className="nowrap" data-testid="job-spec-summary" title={j.spec ? specExtras(j.spec).join("; ") : undefined}>
                    {j.spec ? optimizerSummary(j.spec) : "–"}{j.spec && specExtras(j.spec).length > 0 ? " …" : ""}
                  </td>
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

function LiveJob({ jobId, onEnd }: { jobId: string; onEnd: () => void }) {
  const [view, setView] = useState<JobView>(initialView());
  const [job, setJob] = useState<S<"v1Job"> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [streamNote, setStreamNote] = useState("");
  const canCancel = useSession().can("write");

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
      // Follow the stream: the SDK resumes one that drops mid-watch (a
      // restart, a proxy timeout) after the last event; should it give up,
      // or fail before the first event, start again after the last one seen.
      for (let attempt = 0; !abort.signal.aborted; attempt++) {
        try {
          const note = (e: unknown) => setStreamNote(`stream interrupted (${describe(e)}); reconnecting…`);
          for await (const ev of watchJob(jobId, current.lastSequence, abort.signal, note)) {
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
  const showLR = epochs.some((e) => (e.learningRate ?? 0) > 0);
  return (
    <div className="card" data-testid="live-job">
      <h2>Job <code>{jobId.slice(0, 8)}</code> <span className={`state ${view.state}`} data-testid="job-state">{enumLabel(view.state, "JOB_STATE_")}</span></h2>
      {job?.spec && (
        <p className="muted" data-testid="job-spec">
          {[`${job.spec.dataset} v${num(job.spec.snapshotVersion)}`, job.spec.architecture, job.spec.imageSize ? `${job.spec.imageSize}×${job.spec.imageSize}` : "",
            `${job.spec.epochs} epochs`, `batch ${job.spec.batchSize}`, optimizerSummary(job.spec), ...specExtras(job.spec)].filter(Boolean).join(" · ")}
        </p>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {streamNote && <p className="muted">{streamNote}</p>}
      <Progress fraction={fraction(view)}
        label={ended ? enumLabel(view.state, "JOB_STATE_") : p ? `epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}${eta !== undefined ? `, ETA ${duration(eta)}` : ""}` : "waiting"} />
      {p && !ended && <p className="muted">{Math.round(p.imagesPerSecond ?? 0)} images/s · train loss {p.trainLoss?.toFixed(3)}</p>}
      {view.reason && view.state !== "JOB_STATE_SUCCEEDED" && <div className="error" role="alert">{view.reason}</div>}
      {!ended && canCancel && <button type="button" onClick={cancel} className="danger" data-testid="job-cancel">Cancel</button>}
      <div className="charts" data-testid="job-charts" data-epochs={epochs.length}>
        <LineChart title="loss" series={[
          { name: "train", color: "#ffb347", values: epochs.map((e) => e.trainLoss) },
          { name: "validation", color: "#4fc3f7", values: epochs.map((e) => e.valLoss) },
        ]} />
        <LineChart title="accuracy" yMax={1} format={(v) => `${Math.round(v * 100)}%`} series={[
          { name: "train", color: "#ffb347", values: epochs.map((e) => e.trainAccuracy) },
          { name: "validation", color: "#4fc3f7", values: epochs.map((e) => e.valAccuracy) },
        ]} />
        {showLR && (
          <LineChart title="learning rate" format={learningRate} series={[
            { name: "learning rate", color: "#9ccc65", values: epochs.map((e) => e.learningRate) },
          ]} />
        )}
      </div>
      {epochs.length > 0 && (
        <table className="compact">
          <thead><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>val loss</th><th>val acc</th>{showLR && <th>learning rate</th>}{showRate && <th>images/s</th>}<th>time</th></tr></thead>
          <tbody>{epochs.map((e) => (
            <tr key={e.epoch} className={e.best ? "best" : undefined}>
              <td>{e.epoch}{e.best ? " ★" : ""}</td><td>{e.trainLoss?.toFixed(3)}</td><td>{pct(e.trainAccuracy)}</td>
              <td>{e.valLoss?.toFixed(3)}</td><td>{pct(e.valAccuracy)}</td>{showLR && <td>{learningRate(e.learningRate)}</td>}{showRate && <td>{Math.round(e.imagesPerSecond ?? 0)}</td>}<td>{duration(seconds(e.duration))}</td>
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
