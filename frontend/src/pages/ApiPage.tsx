import { Component, Suspense, lazy, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { shoal } from "../api/client";
import { toApiError } from "../api/errors";
import { ErrorBanner } from "../components/ErrorBanner";
import { useLoad } from "../hooks";
import { operationMatches, operations } from "./apiFilter";
import type { OpenAPIDocument } from "./apiFilter";

// The API reference: the REST API's OpenAPI document, as the server serves
// it at /openapi.json (Swagger 2.0, written from proto/ by make generate),
// rendered by Swagger UI. Swagger UI is loaded only when the page is opened
// (ApiReference.tsx is its own chunk), so the console's first load does not
// carry it.
const ApiReference = lazy(() => import("./ApiReference"));

export type { OpenAPIDocument };

async function loadDocument(): Promise<OpenAPIDocument> {
  const response = await shoal.fetch("/openapi.json", { headers: { Accept: "application/json" } });
  const text = await response.text();
  if (!response.ok) throw toApiError(text, response.status);
  return JSON.parse(text) as OpenAPIDocument;
}

// Text shows a proto comment: paragraphs split at blank lines, lines joined.
function Text({ text }: { text?: string }) {
  if (!text?.trim()) return null;
  return <>{text.trim().split(/\n\s*\n/).map((p, i) => <p key={i} className="api-text">{p.replace(/\s*\n\s*/g, " ")}</p>)}</>;
}

// Failed catches a failure to load or run the renderer (its chunk missing
// after a redeploy, a broken document), so the rest of the console stays.
class Failed extends Component<{ children: ReactNode }, { error: unknown }> {
  state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  render() {
    if (this.state.error) return <ErrorBanner error={new Error(`The API reference could not be shown: ${String(this.state.error)}. Reload the page, or read /openapi.json itself.`)} />;
    return this.props.children;
  }
}

export function ApiPage() {
  const doc = useLoad(loadDocument, []);
  const [filter, setFilter] = useState("");
  const all = useMemo(() => (doc.data ? operations(doc.data) : []), [doc.data]);
  if (doc.error) return <section className="card"><h2>API reference</h2><ErrorBanner error={doc.error} /></section>;
  if (!doc.data) return <p className="muted">Loading the API's description…</p>;
  const shown = all.filter((o) => operationMatches(filter, o)).length;
  return (
    <div className="api" data-testid="api-page">
      <section className="card">
        <h2>{doc.data.info?.title ?? "API"} <span className="muted">{doc.data.info?.version}</span></h2>
        <Text text={doc.data.info?.description} />
        <p className="muted" data-testid="api-summary">
          {all.length} operations and {Object.keys(doc.data.definitions ?? {}).length} messages, from{" "}
          <a href="/openapi.json">/openapi.json</a> (OpenAPI {doc.data.swagger ?? "2.0"}). Calls carry a token as{" "}
          <code>Authorization: Bearer …</code>; <em>Try it out</em> sends the token you are logged in with. The TypeScript
          SDK <code>@shoal/client</code> types every route and message from this document.
        </p>
        <input type="search" placeholder="Filter: a path, a method, an operation or a service" value={filter}
          onChange={(e) => setFilter(e.target.value)} data-testid="api-filter" aria-label="Filter the API reference" />
        {filter.trim() && (
          <p className="muted" data-testid="api-matches">
            {shown === 0 ? <>No operation matches “{filter.trim()}”.</> : <>{shown} of {all.length} operations match.</>}
          </p>
        )}
      </section>
      <section className="card api-card">
        <Failed>
          <Suspense fallback={<p className="muted">Loading the reference…</p>}>
            <ApiReference doc={doc.data} filter={filter} />
          </Suspense>
        </Failed>
      </section>
    </div>
  );
}
