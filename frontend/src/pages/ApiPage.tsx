import { Fragment, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { shoal } from "../api/client";
import { toApiError } from "../api/errors";
import { ErrorBanner } from "../components/ErrorBanner";
import { useLoad } from "../hooks";

// The API reference: the REST API's OpenAPI document, as the server serves
// it at /openapi.json (Swagger 2.0, written from proto/ by make generate),
// rendered here. Renderers from npm were passed over for the server's
// Content-Security-Policy (no inline style, no eval): Redoc injects <style>
// elements, Swagger UI sets inline styles, RapiDoc's templates carry style
// attributes. This page uses only the console's stylesheet.

export type Schema = {
  $ref?: string;
  type?: string;
  format?: string;
  title?: string;
  description?: string;
  items?: Schema;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  enum?: string[];
  required?: string[];
};
type Parameter = { name: string; in: string; required?: boolean; type?: string; format?: string; items?: Schema; enum?: string[]; description?: string; schema?: Schema };
type Operation = {
  summary?: string;
  description?: string;
  operationId?: string;
  tags?: string[];
  parameters?: Parameter[];
  responses?: Record<string, { description?: string; schema?: Schema }>;
};
export type OpenAPIDocument = {
  swagger?: string;
  info?: { title?: string; description?: string; version?: string };
  tags?: { name: string; description?: string }[];
  paths?: Record<string, Record<string, Operation>>;
  definitions?: Record<string, Schema>;
};

type Op = { method: string; path: string; op: Operation; id: string };

const methods = ["get", "post", "put", "patch", "delete"];

const refName = (ref: string) => ref.replace(/^#\/definitions\//, "");

// groups lists the operations by tag (service), in the document's order of
// tags, each keeping the order of paths.
export function groups(doc: OpenAPIDocument): { tag: string; description?: string; ops: Op[] }[] {
  const byTag = new Map<string, Op[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of methods) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? "Other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), { method, path, op, id: op.operationId ?? `${method} ${path}` }]);
    }
  }
  const described = new Map((doc.tags ?? []).map((t) => [t.name, t.description]));
  const order = [...(doc.tags ?? []).map((t) => t.name), ...byTag.keys()];
  return [...new Set(order)].filter((t) => byTag.has(t)).map((tag) => ({ tag, description: described.get(tag), ops: byTag.get(tag)! }));
}

// reachable adds to seen the names of the messages schema refers to, and
// of those they refer to in turn.
function reachable(schema: Schema | undefined, defs: Record<string, Schema>, seen: Set<string>): void {
  if (!schema) return;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    if (seen.has(name)) return;
    seen.add(name);
    reachable(defs[name], defs, seen);
    return;
  }
  reachable(schema.items, defs, seen);
  if (typeof schema.additionalProperties === "object") reachable(schema.additionalProperties, defs, seen);
  for (const p of Object.values(schema.properties ?? {})) reachable(p, defs, seen);
}

// messagesOf names the messages ops use, in their parameters, bodies and
// answers.
export function messagesOf(ops: Op[], defs: Record<string, Schema>): Set<string> {
  const seen = new Set<string>();
  for (const { op } of ops) {
    for (const p of op.parameters ?? []) reachable(p.schema ?? p.items, defs, seen);
    for (const r of Object.values(op.responses ?? {})) reachable(r.schema, defs, seen);
  }
  return seen;
}

// Text shows a proto comment: paragraphs split at blank lines, lines joined.
function Text({ text }: { text?: string }) {
  if (!text?.trim()) return null;
  return <>{text.trim().split(/\n\s*\n/).map((p, i) => <p key={i} className="api-text">{p.replace(/\s*\n\s*/g, " ")}</p>)}</>;
}

// firstSentence is an operation's one-line summary.
function firstSentence(text?: string): string {
  const t = (text ?? "").replace(/\s+/g, " ").trim();
  const end = t.search(/\.(\s|$)/);
  return end > 0 ? t.slice(0, end + 1) : t;
}

// TypeOf names a schema's type, linking messages to their description.
function TypeOf({ schema }: { schema?: Schema }): ReactNode {
  if (!schema) return "—";
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return <a href={`#schema-${name}`}>{name}</a>;
  }
  if (schema.type === "array") return <><TypeOf schema={schema.items} />[]</>;
  if (schema.type === "object" && typeof schema.additionalProperties === "object") {
    return <>map&lt;string, <TypeOf schema={schema.additionalProperties} />&gt;</>;
  }
  if (schema.enum) return `enum (${schema.enum.join(" | ")})`;
  return `${schema.type ?? "object"}${schema.format ? ` (${schema.format})` : ""}`;
}

// streamOf gives the message of a server stream's lines, or undefined for
// an ordinary answer.
function streamOf(schema?: Schema): Schema | undefined {
  return schema?.title?.startsWith("Stream result of") ? schema.properties?.result : undefined;
}

function OperationView({ op }: { op: Op }) {
  const params = op.op.parameters ?? [];
  const body = params.find((p) => p.in === "body");
  const ok = op.op.responses?.["200"]?.schema;
  const stream = streamOf(ok);
  const url = `${shoal.baseUrl}${op.path}`;
  return (
    <details className="api-op" id={op.id} data-testid="api-op">
      <summary>
        <span className={`api-method ${op.method}`}>{op.method.toUpperCase()}</span> <code className="api-path">{op.path}</code>{" "}
        <span className="muted">{firstSentence(op.op.summary ?? op.op.description)}</span>
      </summary>
      <Text text={op.op.summary} />
      <Text text={op.op.description} />
      {params.some((p) => p.in !== "body") && (
        <table className="compact api-params">
          <thead><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr></thead>
          <tbody>
            {params.filter((p) => p.in !== "body").map((p) => (
              <tr key={`${p.in} ${p.name}`}>
                <td><code>{p.name}</code>{p.required && <span className="muted"> required</span>}</td>
                <td>{p.in}</td>
                <td><TypeOf schema={{ type: p.type, format: p.format, items: p.items, enum: p.enum }} /></td>
                <td>{p.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        {body && <>Request body: <TypeOf schema={body.schema} /> (JSON). </>}
        {stream
          ? <>Answer: a stream of <TypeOf schema={stream} />, one JSON line each (<code>{"{\"result\": …}"}</code>, or last <code>{"{\"error\": …}"}</code>).</>
          : <>Answer: <TypeOf schema={ok} />.</>}{" "}
        Errors: <a href="#schema-rpcStatus">rpcStatus</a> with the HTTP status of its code.
      </p>
      <pre className="api-example"><code>{`curl -H "Authorization: Bearer $SHOAL_TOKEN"${op.method === "get" ? "" : ` -X ${op.method.toUpperCase()}`}${body ? " -d '{…}'" : ""} '${url}'`}</code></pre>
    </details>
  );
}

function MessageView({ name, schema }: { name: string; schema: Schema }) {
  const fields = Object.entries(schema.properties ?? {});
  return (
    <section className="api-message" id={`schema-${name}`} data-testid="api-message">
      <h4><code>{name}</code></h4>
      <Text text={schema.description ?? schema.title} />
      {schema.enum && <p>One of {schema.enum.map((v, i) => <Fragment key={v}>{i ? ", " : ""}<code>{v}</code></Fragment>)}.</p>}
      {fields.length > 0 && (
        <table className="compact">
          <thead><tr><th>field</th><th>type</th><th>description</th></tr></thead>
          <tbody>
            {fields.map(([f, s]) => (
              <tr key={f}><td><code>{f}</code></td><td><TypeOf schema={s} /></td><td>{s.description ?? s.title}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

async function loadDocument(): Promise<OpenAPIDocument> {
  const response = await shoal.fetch("/openapi.json", { headers: { Accept: "application/json" } });
  const text = await response.text();
  if (!response.ok) throw toApiError(text, response.status);
  return JSON.parse(text) as OpenAPIDocument;
}

export function ApiPage() {
  const doc = useLoad(loadDocument, []);
  const [filter, setFilter] = useState("");
  const all = useMemo(() => (doc.data ? groups(doc.data) : []), [doc.data]);
  if (doc.error) return <section className="card"><h2>API reference</h2><ErrorBanner error={doc.error} /></section>;
  if (!doc.data) return <p className="muted">Loading the API's description…</p>;
  const q = filter.trim().toLowerCase();
  const match = (o: Op) => !q || `${o.method} ${o.path} ${o.id} ${o.op.summary ?? ""}`.toLowerCase().includes(q);
  const shown = all.map((g) => ({ ...g, ops: g.ops.filter(match) })).filter((g) => g.ops.length > 0);
  // A filter keeps the messages whose names match and those the operations
  // shown use, so every link on the page leads somewhere.
  const defs = doc.data.definitions ?? {};
  const used = q ? messagesOf(shown.flatMap((g) => g.ops), defs) : new Set<string>();
  const messages = Object.entries(defs).filter(([name]) => !q || name.toLowerCase().includes(q) || used.has(name));
  const count = all.reduce((a, g) => a + g.ops.length, 0);
  return (
    <div className="api" data-testid="api-page">
      <section className="card">
        <h2>{doc.data.info?.title ?? "API"} <span className="muted">{doc.data.info?.version}</span></h2>
        <Text text={doc.data.info?.description} />
        <p className="muted" data-testid="api-summary">
          {count} operations and {Object.keys(doc.data.definitions ?? {}).length} messages, from{" "}
          <a href="/openapi.json">/openapi.json</a> (OpenAPI {doc.data.swagger ?? "2.0"}). Calls carry a token as{" "}
          <code>Authorization: Bearer …</code>; the TypeScript SDK <code>@shoal/client</code> types every route and message from this document.
        </p>
        <input type="search" placeholder="Filter: a path, an operation or a message" value={filter}
          onChange={(e) => setFilter(e.target.value)} data-testid="api-filter" aria-label="Filter the API reference" />
      </section>
      {shown.map((g) => (
        <section className="card" key={g.tag} data-testid="api-service">
          <h3>{g.tag}</h3>
          <Text text={g.description} />
          {g.ops.map((o) => <OperationView key={o.id} op={o} />)}
        </section>
      ))}
      {shown.length === 0 && <p className="muted">No operation matches “{filter}”.</p>}
      {messages.length > 0 && (
        <section className="card" data-testid="api-messages">
          <h3>Messages</h3>
          {messages.map(([name, schema]) => <MessageView key={name} name={name} schema={schema} />)}
        </section>
      )}
    </div>
  );
}
