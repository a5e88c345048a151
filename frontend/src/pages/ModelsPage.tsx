import { useState } from "react";
import { api, num, ok } from "../api/client";
import type { S } from "../api/client";
import { ErrorBanner } from "../components/ErrorBanner";
import { ConfusionHeatmap } from "../components/Heatmap";
import { useLoad } from "../hooks";
import { pct, when } from "../format";
import { navigate, useQuery } from "../router";
import { useSession } from "../session";

export function ModelsPage() {
  const m = useQuery("m");
  const v = useQuery("v");
  const models = useLoad(async () => (await ok(api.GET("/v1/models", { params: { query: { pageSize: 100 } } }))).models ?? [], []);
  const list = models.data ?? [];
  const current = list.find((x) => x.name === m) ?? (m ? undefined : list[0]);
  return (
    <section className="page models">
      <div className="card">
        <h2>Models</h2>
        <ErrorBanner error={models.error} />
        {!models.loading && list.length === 0 && <p className="muted">No model yet: train one on the Training page.</p>}
        <ul className="pills">
          {list.map((x) => (
            <li key={x.name}>
              <button type="button" className={x.name === current?.name ? "pill active" : "pill"}
                onClick={() => navigate(`/models?m=${encodeURIComponent(x.name ?? "")}`)}>
                {x.name} <small>{num(x.latestVersion)} versions{x.aliases?.production ? `, production v${x.aliases.production}` : ""}</small>
              </button>
            </li>
          ))}
        </ul>
        {m && !models.loading && !current && <ErrorBanner error={new Error(`No model named ${m}.`)} />}
      </div>
      {current?.name && <Versions key={current.name} model={current.name} selected={v} onChange={models.reload} />}
    </section>
  );
}

function Versions({ model, selected, onChange }: { model: string; selected: string | null; onChange: () => void }) {
  const versions = useLoad(async () => {
    const r = await ok(api.GET("/v1/models/{model}/versions", { params: { path: { model }, query: { pageSize: 100 } } }));
    return [...(r.versions ?? [])].sort((a, b) => num(b.version) - num(a.version));
  }, [model]);
  const [error, setError] = useState<unknown>(null);
  const session = useSession();
  const canPromote = session.can("write");
  const canDelete = session.can("admin");
  const list = versions.data ?? [];
  const current = list.find((x) => String(x.version) === selected) ?? (selected ? undefined : list[0]);
  const refresh = async () => { await versions.reload(); onChange(); };

  const promote = async (v: S<"v1Version">) => {
    setError(null);
    try {
      await ok(api.PUT("/v1/models/{model}/aliases/{alias}", { params: { path: { model, alias: "production" } }, body: { version: v.version ?? 0 } }));
      await refresh();
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (v: S<"v1Version">) => {
    if (!window.confirm(`Delete ${model} v${v.version}? Its artifact is removed for good.`)) return;
    setError(null);
    try {
      await ok(api.DELETE("/v1/models/{model}/versions/{version}", { params: { path: { model, version: v.version ?? 0 } } }));
      navigate(`/models?m=${encodeURIComponent(model)}`);
      await refresh();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <div className="card">
        <h3>Versions of {model}</h3>
        <ErrorBanner error={versions.error} />
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
        <table data-testid="versions">
          <thead><tr><th>version</th><th>aliases</th><th>architecture</th><th>val accuracy</th><th>test accuracy</th><th>created</th>{(canPromote || canDelete) && <th></th>}</tr></thead>
          <tbody>
            {list.map((v) => (
              <tr key={v.version} className={v === current ? "selected" : undefined} data-version={v.version}>
                <td><a href={`/models?m=${model}&v=${v.version}`} onClick={(e) => { e.preventDefault(); navigate(`/models?m=${encodeURIComponent(model)}&v=${v.version}`); }}>v{v.version}</a></td>
                <td>{(v.aliases ?? []).map((a) => <span key={a} className="tag">{a}</span>)}</td>
                <td>{v.architecture}</td>
                <td>{pct(v.metrics?.valAccuracy)}</td>
                <td>{pct(v.metrics?.testAccuracy)}</td>
                <td>{when(v.createTime)}</td>
                {(canPromote || canDelete) && (
                  <td className="actions">
                    {canPromote && !(v.aliases ?? []).includes("production") && (
                      <button type="button" onClick={() => promote(v)} data-testid={`promote-${v.version}`}>Promote to production</button>
                    )}
                    {canDelete && <button type="button" className="danger" onClick={() => remove(v)}>Delete</button>}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {current && <VersionDetail version={current} />}
    </>
  );
}

function VersionDetail({ version: v }: { version: S<"v1Version"> }) {
  const labels = v.labels ?? [];
  const cm = v.metrics?.confusionMatrix;
  const lineage = v.lineage;
  const perClass = v.metrics?.perClass ?? [];
  const hp = Object.entries(v.hyperParameters ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="card" data-testid="version-detail">
      <h3>{v.model} v{v.version}</h3>
      <div className="lineage" aria-label="lineage">
        {lineage?.dataset ? (
          <a href={`/datasets?d=${lineage.dataset}`} onClick={(e) => { e.preventDefault(); navigate(`/datasets?d=${encodeURIComponent(lineage.dataset ?? "")}`); }}>
            dataset {lineage.dataset} snapshot v{num(lineage.snapshotVersion)}</a>
        ) : <span>uploaded artifact</span>}
        <span className="arrow">→</span>
        {lineage?.jobId ? (
          <a href={`/training?job=${lineage.jobId}`} onClick={(e) => { e.preventDefault(); navigate(`/training?job=${lineage.jobId}`); }}>job {lineage.jobId.slice(0, 8)}</a>
        ) : <span>no training job</span>}
        <span className="arrow">→</span>
        <strong>{v.model} v{v.version}</strong>
        {lineage?.parent?.model && <span className="muted"> (fine-tuned from {lineage.parent.model} v{lineage.parent.version})</span>}
      </div>
      <p>
        Test accuracy <strong>{pct(v.metrics?.testAccuracy)}</strong> on {num(v.metrics?.testExamples)} images · test loss {v.metrics?.testLoss?.toFixed(3)} ·
        validation accuracy {pct(v.metrics?.valAccuracy)} · input {v.inputSpec?.channels}×{v.inputSpec?.height}×{v.inputSpec?.width}{v.inputSpec?.jpegDecode === "JPEG_DECODE_DCT_SCALED" ? " (JPEGs decoded DCT-scaled)" : ""} · artifact {num(v.artifact?.sizeBytes).toLocaleString()} bytes
      </p>
      <div className="detail-grid">
        <div>
          <h4>Confusion matrix</h4>
          <ConfusionHeatmap labels={labels} counts={(cm?.counts ?? []).map(num)} />
        </div>
        <div>
          <h4>Per class</h4>
          {perClass.length === 0 ? <p className="muted">No per-class metrics.</p> : (
            <table className="compact per-class">
              <thead><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead>
              <tbody>{perClass.map((c) => (
                <tr key={c.label}>
                  <th>{c.label}</th>
                  <td><Meter v={c.precision} /></td><td><Meter v={c.recall} /></td>
                  <td>{pct(c.f1)}</td><td>{num(c.support)}</td>
                </tr>
              ))}</tbody>
            </table>
          )}
          {hp.length > 0 && (
            <>
              <h4>Hyper-parameters</h4>
              <dl className="hp">{hp.map(([k, val]) => <div key={k}><dt>{k}</dt><dd>{val}</dd></div>)}</dl>
            </>
          )}
        </div>
      </div>
    </div>
  );
}

function Meter({ v }: { v?: number }) {
  return (
    <span className="meter"><span style={{ width: `${Math.max(0, Math.min(1, v ?? 0)) * 100}%` }} /><em>{pct(v)}</em></span>
  );
}
