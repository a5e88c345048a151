// The API page's filter: an operation matches when its method, path,
// operation id, summary or service (tag) holds the phrase, in any case.
// The page counts with it, and the reference's opsFilter (ApiReference.tsx)
// hides the operations that do not match with it.

export type OperationKey = { method: string; path: string; operationId?: string; summary?: string; tag?: string };

export function normalise(phrase: string): string {
  return phrase.trim().toLowerCase();
}

export function operationMatches(phrase: string, op: OperationKey): boolean {
  const q = normalise(phrase);
  if (!q) return true;
  return [op.method, op.path, op.operationId, op.summary, op.tag].some((f) => f?.toLowerCase().includes(q));
}

// The document's shape as far as the page reads it (Swagger 2.0, as
// make generate writes it from proto/).
export type OpenAPIDocument = {
  swagger?: string;
  info?: { title?: string; description?: string; version?: string };
  tags?: { name: string; description?: string }[];
  paths?: Record<string, Record<string, { operationId?: string; summary?: string; tags?: string[] }>>;
  definitions?: Record<string, unknown>;
};

const methods = new Set(["get", "put", "post", "delete", "options", "head", "patch"]);

// operations lists the document's operations, in its order of paths.
export function operations(doc: OpenAPIDocument): OperationKey[] {
  const out: OperationKey[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!methods.has(method)) continue;
      out.push({ method, path, operationId: op.operationId, summary: op.summary, tag: op.tags?.[0] });
    }
  }
  return out;
}
