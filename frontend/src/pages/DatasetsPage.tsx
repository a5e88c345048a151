import { useState } from "react";
import { api, num, ok, thumbnailUrl } from "../api/client";
import { ApiImage } from "../components/ApiImage";
import { useSession } from "../session";
import type { S } from "../api/client";
import { uploadImages } from "../api/upload";
import type { UploadResult } from "../api/upload";
import { ErrorBanner } from "../components/ErrorBanner";
import { Progress } from "../components/Progress";
import { useLoad } from "../hooks";
import { bytes, enumLabel, when } from "../format";
import { navigate, useQuery } from "../router";

const splits: S<"v1Split">[] = ["SPLIT_TRAIN", "SPLIT_VALIDATION", "SPLIT_TEST"];

export function DatasetsPage() {
  const selected = useQuery("d");
  const list = useLoad(async () => (await ok(api.GET("/v1/datasets", { params: { query: { pageSize: 100 } } }))).datasets ?? [], []);
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const canWrite = useSession().can("write");
  const datasets = list.data ?? [];
  const current = datasets.find((d) => d.name === selected) ?? (selected ? undefined : datasets[0]);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.POST("/v1/datasets", { body: { name } }));
      setName("");
      await list.reload();
      navigate(`/datasets?d=${encodeURIComponent(name)}`);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <section className="page datasets">
      <div className="card">
        <h2>Datasets</h2>
        <ErrorBanner error={list.error} />
        <ul className="pills">
          {datasets.map((d) => (
            <li key={d.name}>
              <button type="button" className={d.name === current?.name ? "pill active" : "pill"}
                onClick={() => navigate(`/datasets?d=${encodeURIComponent(d.name ?? "")}`)}>
                {d.name} <small>{num(d.imageCount)} images</small>
              </button>
            </li>
          ))}
        </ul>
        {!list.loading && datasets.length === 0 && <p className="muted">No datasets yet{canWrite ? ": create one, then upload images" : ""}.</p>}
        {canWrite ? (
          <form className="row" onSubmit={create}>
            <input placeholder="new dataset name" value={name} onChange={(e) => setName(e.target.value)} data-testid="dataset-name" />
            <button type="submit" disabled={!name}>Create</button>
          </form>
        ) : <p className="muted" data-testid="read-only">Creating datasets, uploading images and taking snapshots need a token with the write scope.</p>}
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
      </div>
      {current?.name && <Dataset key={current.name} dataset={current} onChange={list.reload} />}
      {selected && !list.loading && !current && <ErrorBanner error={new Error(`No dataset named ${selected}.`)} />}
    </section>
  );
}

function Dataset({ dataset, onChange }: { dataset: S<"v1Dataset">; onChange: () => void }) {
  const name = dataset.name ?? "";
  const stats = useLoad(() => ok(api.GET("/v1/datasets/{dataset}/stats", { params: { path: { dataset: name } } })), [name]);
  const counts = stats.data?.counts ?? [];
  const labels = [...new Set(counts.map((c) => c.label ?? ""))].sort();
  const presentSplits = splits.filter((s) => counts.some((c) => c.split === s));
  const count = (split: string, label: string) => num(counts.find((c) => c.split === split && c.label === label)?.count);
  const refresh = () => { void stats.reload(); onChange(); };
  const canWrite = useSession().can("write");
  return (
    <>
      <div className="card">
        <h2>{name}</h2>
        {dataset.description && <p className="muted">{dataset.description}</p>}
        <ErrorBanner error={stats.error} />
        {stats.data && (
          <>
            <p>{num(stats.data.imageCount)} images · {bytes(num(stats.data.totalBytes))}</p>
            {labels.length > 0 && (
              <table className="counts" data-testid="dataset-counts">
                <thead><tr><th>label</th>{presentSplits.map((s) => <th key={s}>{enumLabel(s, "SPLIT_")}</th>)}<th>total</th></tr></thead>
                <tbody>
                  {labels.map((l) => (
                    <tr key={l}><th>{l}</th>
                      {presentSplits.map((s) => <td key={s}>{count(s, l)}</td>)}
                      <td>{presentSplits.reduce((a, s) => a + count(s, l), 0)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </div>
      {canWrite && <Upload dataset={name} onDone={refresh} />}
      <Snapshots dataset={name} onDone={onChange} canWrite={canWrite} />
      {labels.length > 0 && <Samples dataset={name} labels={labels} revision={num(stats.data?.imageCount)} />}
    </>
  );
}

// revision (the image count) changes after an upload, which reloads the samples.
function Samples({ dataset, labels, revision }: { dataset: string; labels: string[]; revision: number }) {
  const perLabel = 6;
  const samples = useLoad(() => Promise.all(labels.map(async (label) => {
    const page = await ok(api.GET("/v1/datasets/{dataset}/images", { params: { path: { dataset }, query: { label, pageSize: perLabel } } }));
    return { label, images: page.images ?? [], total: num(page.totalSize) };
  })), [dataset, labels.join("\n"), revision]);
  return (
    <div className="card">
      <h3>Samples</h3>
      <ErrorBanner error={samples.error} />
      <div className="samples" data-testid="samples">
        {(samples.data ?? []).map((s) => (
          <div key={s.label} className="sample-row">
            <h4>{s.label} <small>({s.total})</small></h4>
            <div className="thumbs">
              {s.images.map((img) => (
                <ApiImage key={img.id} src={thumbnailUrl(dataset, img.id ?? "")} alt={`${s.label} ${img.fileName}`} loading="lazy"
                  title={`${img.fileName} · ${enumLabel(img.split, "SPLIT_")} · ${img.width}×${img.height}`} />
              ))}
            </div>
          </div>
        ))}
      </div>
    </div>
  );
}

function Upload({ dataset, onDone }: { dataset: string; onDone: () => void }) {
  const [mode, setMode] = useState<"files" | "archive">("files");
  const [files, setFiles] = useState<File[]>([]);
  const [split, setSplit] = useState<S<"v1Split">>("SPLIT_TRAIN");
  const [label, setLabel] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<UploadResult | null>(null);
  const [error, setError] = useState<unknown>(null);

  const start = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    setProgress(0);
    try {
      const r = await uploadImages(dataset, mode === "archive" ? { archive: files[0] } : { files, split, label: label.trim() }, setProgress);
      setProgress(1);
      setResult(r);
      setFiles([]);
      onDone();
    } catch (err) {
      setError(err);
      setProgress(null);
    }
  };
  const ready = files.length > 0 && (mode === "archive" || label.trim() !== "");
  return (
    <form className="card" onSubmit={start}>
      <h3>Upload</h3>
      <div className="row">
        <label><input type="radio" checked={mode === "files"} onChange={() => { setMode("files"); setFiles([]); }} /> images</label>
        <label><input type="radio" checked={mode === "archive"} onChange={() => { setMode("archive"); setFiles([]); }} /> an archive (.zip, .tar, .tar.gz laid out split/Label/file)</label>
      </div>
      <div className="row">
        <input type="file" multiple={mode === "files"} data-testid="upload-files"
          accept={mode === "archive" ? ".zip,.tar,.tar.gz,.tgz" : "image/*"}
          onChange={(e) => setFiles([...(e.target.files ?? [])])} />
        {mode === "files" && (
          <>
            <select value={split} onChange={(e) => setSplit(e.target.value as S<"v1Split">)} aria-label="split">
              {splits.map((s) => <option key={s} value={s}>{enumLabel(s, "SPLIT_")}</option>)}
            </select>
            <input placeholder="label" value={label} onChange={(e) => setLabel(e.target.value)} aria-label="label" />
          </>
        )}
        <button type="submit" disabled={!ready || (progress !== null && progress < 1)}>Upload</button>
      </div>
      {progress !== null && <Progress fraction={progress} label={progress < 1 ? "uploading" : "uploaded"} />}
      {result && (
        <p data-testid="upload-result">
          {num(result.counts?.added)} added, {num(result.counts?.duplicates)} duplicates, {num(result.counts?.conflicts)} conflicts,
          {" "}{num(result.counts?.rejected)} rejected
        </p>
      )}
      {(result?.rejections?.length ?? 0) > 0 && (
        <ul className="rejections">{result?.rejections?.map((r) => <li key={r.path}>{r.path}: {r.reason}</li>)}</ul>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </form>
  );
}

function Snapshots({ dataset, onDone, canWrite }: { dataset: string; onDone: () => void; canWrite: boolean }) {
  const snaps = useLoad(async () => (await ok(api.GET("/v1/datasets/{dataset}/snapshots", { params: { path: { dataset } } }))).snapshots ?? [], [dataset]);
  const [description, setDescription] = useState("");
  const [error, setError] = useState<unknown>(null);
  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.POST("/v1/datasets/{dataset}/snapshots", { params: { path: { dataset } }, body: { description } }));
      setDescription("");
      await snaps.reload();
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const list = [...(snaps.data ?? [])].sort((a, b) => num(b.version) - num(a.version));
  return (
    <div className="card">
      <h3>Snapshots</h3>
      <ErrorBanner error={snaps.error} />
      {list.length === 0 && !snaps.loading && <p className="muted">No snapshot yet. Training reads snapshots.</p>}
      {list.length > 0 && (
        <table data-testid="snapshots">
          <thead><tr><th>version</th><th>images</th><th>description</th><th>manifest</th><th>taken</th></tr></thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.version}>
                <td>v{s.version}</td><td>{num(s.imageCount)}</td><td>{s.description}</td>
                <td><code>{s.manifestSha256?.slice(0, 12)}</code></td><td>{when(s.createTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canWrite && (
        <form className="row" onSubmit={create}>
          <input placeholder="description" value={description} onChange={(e) => setDescription(e.target.value)} />
          <button type="submit">Take a snapshot</button>
        </form>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </div>
  );
}
