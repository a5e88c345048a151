import { useEffect, useRef } from "react";
import SwaggerUI from "swagger-ui-react";
import "swagger-ui-react/swagger-ui.css";
import "./ApiReference.css";
import { authorization } from "../api/auth";
import { operationMatches } from "./apiFilter";
import type { OpenAPIDocument } from "./apiFilter";

// ApiReference renders the OpenAPI document with Swagger UI. This module is
// imported lazily by the API page, so Swagger UI (about 1.5 MB of script,
// 190 kB of stylesheet) is a chunk of its own, fetched only when the page is
// opened. It runs under the server's Content-Security-Policy as it is: its
// stylesheet is a file, and React sets its few inline styles through the
// CSSOM, which style-src does not govern; it evaluates no strings.

// Immutable.js values, as Swagger UI's state holds them; only the methods
// used here.
type Imm = {
  get(key: string): any;
  getIn(path: string[]): any;
  set(key: string, v: unknown): Imm;
  map(fn: (v: any, k: string) => any): Imm;
  filter(fn: (v: any, k: string) => boolean): Imm;
  size: number;
};

// shoalPlugin matches the page's filter against every operation's method,
// path, id and summary (Swagger UI's own matches tag names only), and
// leaves out the parts the page shows itself: the filter box and the
// document's title and description.
const shoalPlugin = () => ({
  fn: {
    opsFilter: (taggedOps: Imm, phrase: string) =>
      taggedOps
        .map((tagObj: Imm, tag: string) =>
          tagObj.set("operations", tagObj.get("operations").filter((op: Imm) =>
            operationMatches(phrase, {
              method: op.get("method"),
              path: op.get("path"),
              operationId: op.getIn(["operation", "operationId"]),
              summary: op.getIn(["operation", "summary"]),
              tag,
            }))))
        .filter((tagObj: Imm) => tagObj.get("operations").size > 0),
  },
  components: {
    FilterContainer: () => null,
    InfoContainer: () => null,
  },
});

// withToken sends the console's token with the calls of "Try it out", as
// the console's own calls do. The request snippets show the request as
// written (showMutatedRequest off), so the token never appears on the page.
function withToken(req: { headers: Record<string, string> }) {
  const auth = authorization();
  if (auth && !req.headers.Authorization) req.headers.Authorization = auth;
  return req;
}

type System = { layoutActions: { updateFilter(phrase: string): void } };

export default function ApiReference({ doc, filter }: { doc: OpenAPIDocument; filter: string }) {
  const system = useRef<System | null>(null);
  const latest = useRef(filter);
  latest.current = filter;
  useEffect(() => {
    system.current?.layoutActions.updateFilter(filter.trim());
  }, [filter]);
  // Swagger UI's dark palette is keyed on the root element's class; the
  // console is always dark.
  useEffect(() => {
    const root = document.documentElement;
    const had = root.classList.contains("dark-mode");
    root.classList.add("dark-mode");
    return () => {
      if (!had) root.classList.remove("dark-mode");
    };
  }, []);
  return (
    <div className="api-reference" data-testid="api-reference">
      <SwaggerUI
        spec={doc}
        plugins={[shoalPlugin]}
        requestInterceptor={withToken as never}
        showMutatedRequest={false}
        deepLinking
        queryConfigEnabled={false}
        defaultModelsExpandDepth={1}
        onComplete={(s: System) => {
          system.current = s;
          s.layoutActions.updateFilter(latest.current.trim());
        }}
      />
    </div>
  );
}
