import { useCallback, useEffect, useRef, useState } from "react";
import { api, num, ok, shoal, thumbnailUrl } from "../api/client";
import type { S } from "../api/client";
import { ErrorBanner } from "../components/ErrorBanner";
import { ApiImage } from "../components/ApiImage";
import { useSession } from "../session";
import { Bars } from "../components/Bars";
import { useLoad } from "../hooks";
import { pct, seconds } from "../format";

type Answer = { response: S<"v1PredictResponse">; roundTripMs: number; picture?: string };

type Loaded = S<"v1LoadedModel">;

// The models a person can ask: those the registry knows, the ones Inference
// has loaded first. Without the read scope the registry is closed, and the
// choice is what Inference serves (ListLoadedModels needs only predict).
async function loadModels(browse: boolean): Promise<{ models: S<"v1Model">[]; loaded: Loaded[] }> {
  if (!browse) {
    const loaded = (await ok(api.GET("/v1/loaded-models"))).models ?? [];
    return { models: servedModels(loaded), loaded };
  }
  const [registry, loaded] = await Promise.all([
    ok(api.GET("/v1/models", { params: { query: { pageSize: 100 } } })),
    ok(api.GET("/v1/loaded-models")).catch(() => ({ models: [] }) as S<"v1ListLoadedModelsResponse">),
  ]);
  const served = new Set((loaded.models ?? []).map((m) => m.model ?? ""));
  const models = [...(registry.models ?? [])].sort(
    (a, b) => Number(served.has(b.name ?? "")) - Number(served.has(a.name ?? "")),
  );
  return { models, loaded: loaded.models ?? [] };
}

// servedModels names the models of Inference's loaded versions, with the
// version each serves as production.
export function servedModels(loaded: Loaded[]): S<"v1Model">[] {
  const byName = new Map<string, S<"v1Model">>();
  for (const l of loaded) {
    if (!l.model) continue;
    const production: Record<string, number> = l.aliases?.includes("production") && l.version !== undefined ? { production: num(l.version) } : {};
    byName.set(l.model, { name: l.model, aliases: { ...byName.get(l.model)?.aliases, ...production } });
  }
  return [...byName.values()];
}

// A picture of the predicted class: a training image with that label from
// the dataset the answering version was trained on.
async function classPicture(model: string, version: number, label: string): Promise<string | undefined> {
  const v = await ok(api.GET("/v1/models/{model}/versions/{version}", { params: { path: { model, version } } }));
  const dataset = v.version?.lineage?.dataset;
  if (!dataset) return undefined;
  const page = await ok(api.GET("/v1/datasets/{dataset}/images", {
    params: { path: { dataset }, query: { label, pageSize: 1, split: "SPLIT_TRAIN" } },
  }));
  const img = page.images?.[0];
  return img?.id ? thumbnailUrl(dataset, img.id) : undefined;
}

export function PredictPage() {
  const browse = useSession().can("read");
  const models = useLoad(() => loadModels(browse), [browse]);
  const [model, setModel] = useState("");
  const [version, setVersion] = useState(""); // "" asks the production alias
  const [file, setFile] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const list = models.data?.models ?? [];
  const current = list.find((m) => m.name === model) ?? list[0];
  const versions = useLoad(async (): Promise<S<"v1Version">[]> => {
    if (!current?.name) return [];
    if (!browse) {
      return (models.data?.loaded ?? []).filter((l) => l.model === current.name)
        .map((l) => ({ model: l.model, version: l.version === undefined ? undefined : num(l.version), aliases: l.aliases }))
        .sort((a, b) => num(b.version) - num(a.version));
    }
    const r = await ok(api.GET("/v1/models/{model}/versions", { params: { path: { model: current.name }, query: { pageSize: 100 } } }));
    return (r.versions ?? []).sort((a, b) => num(b.version) - num(a.version));
  }, [current?.name, browse, models.data]);
  const production = current?.aliases?.production;

  const predict = useCallback(async (f: File, modelName: string, ver: string) => {
    setBusy(true);
    setError(null);
    try {
      const start = performance.now();
      const response = await shoal.predict(f, { model: modelName, topK: 5, ...(ver ? { version: Number(ver) } : {}) });
      const roundTripMs = performance.now() - start;
      setAnswer({ response, roundTripMs });
      const top = response.results?.[0]?.labels?.[0]?.label;
      // The picture comes from the registry and the dataset: read scope.
      if (browse && top && response.model && response.version) {
        classPicture(response.model, response.version, top)
          .then((picture) => setAnswer((a) => (a && a.response === response ? { ...a, picture } : a)))
          .catch(() => {}); // the picture is decoration; the answer stands without it
      }
    } catch (e) {
      setAnswer(null);
      setError(e);
    } finally {
      setBusy(false);
    }
  }, [browse]);

  const choose = useCallback((f: File | undefined | null) => {
    if (!f) return;
    if (f.type && !f.type.startsWith("image/")) {
      setError(new Error(`${f.name} is not an image (${f.type})`));
      return;
    }
    setFile(f);
    setAnswer(null);
  }, []);

  useEffect(() => {
    if (!file) return;
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);

  useEffect(() => {
    if (file && current?.name) void predict(file, current.name, version);
  }, [file, current?.name, version, predict]);

  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const item = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
      if (item) choose(item);
    };
    window.addEventListener("paste", onPaste);
    return () => window.removeEventListener("paste", onPaste);
  }, [choose]);

  const labels = answer?.response.results?.[0]?.labels ?? [];
  const top = labels[0];
  return (
    <section className="page predict">
      <div className="card">
        <h2>What swims here?</h2>
        <ErrorBanner error={models.error} />
        {!models.loading && list.length === 0 && !models.error && (
          <p className="muted">{browse ? "No model in the registry yet: train one on the Training page." : "No model is served yet."}</p>
        )}
        {list.length > 0 && (
          <div className="row">
            <label>Model{" "}
              <select value={current?.name ?? ""} onChange={(e) => { setModel(e.target.value); setVersion(""); }} data-testid="predict-model">
                {list.map((m) => <option key={m.name} value={m.name}>{m.name}</option>)}
              </select>
            </label>
            <label>Version{" "}
              <select value={version} onChange={(e) => setVersion(e.target.value)} data-testid="predict-version">
                <option value="">production{production ? ` (v${production})` : ""}</option>
                {(versions.data ?? []).map((v) => <option key={v.version} value={v.version}>{versionLabel(v)}</option>)}
              </select>
            </label>
          </div>
        )}
        <div
          className={dragging ? "dropzone dragging" : "dropzone"}
          onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => { e.preventDefault(); setDragging(false); choose(e.dataTransfer.files[0]); }}
          onClick={() => input.current?.click()}
          role="button" tabIndex={0}
          onKeyDown={(e) => { if (e.key === "Enter" || e.key === " ") input.current?.click(); }}
          data-testid="dropzone"
        >
          {preview ? (
            <div>
              <img src={preview} alt="your image" className="preview" />
              <p className="muted hint">{file?.name} · drop, click or paste to ask about another image</p>
            </div>
          ) : (
            <p>Drop an image here, click to choose one, or paste it.</p>
          )}
          <input ref={input} type="file" accept="image/*" hidden data-testid="predict-file"
            onChange={(e) => { choose(e.target.files?.[0]); e.target.value = ""; }} />
        </div>
        {busy && <p className="muted">Asking the shoal…</p>}
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
      </div>
      {answer && top && (
        <div className="card result" data-testid="prediction">
          <div className="result-head">
            {answer.picture && <ApiImage src={answer.picture} alt={`a ${top.label}`} className="species" />}
            <div>
              <h2 className="species-name" data-testid="prediction-label">{top.label}</h2>
              <p className="confidence">{((top.probability ?? 0) * 100).toFixed(1)}% confident</p>
              <p className="muted" data-testid="prediction-version">
                {answer.response.model} v{num(answer.response.version)} · {answer.roundTripMs.toFixed(0)} ms round trip
                {answer.response.timings && ` · ${(seconds(answer.response.timings.total) * 1000).toFixed(1)} ms in the server`}
              </p>
            </div>
          </div>
          <Bars items={labels.map((l) => ({ label: l.label ?? "?", value: l.probability ?? 0 }))} />
        </div>
      )}
    </section>
  );
}

// versionLabel names a version in the picker: "v3 · small-cnn · 91.2% test (production)".
function versionLabel(v: S<"v1Version">): string {
  const parts = [`v${v.version}`];
  if (v.architecture) parts.push(v.architecture);
  if (v.metrics?.testAccuracy) parts.push(`${pct(v.metrics.testAccuracy)} test`);
  return parts.join(" · ") + (v.aliases?.length ? ` (${v.aliases.join(", ")})` : "");
}
