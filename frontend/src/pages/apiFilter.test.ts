import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { operationMatches, operations } from "./apiFilter";
import type { OpenAPIDocument } from "./apiFilter";

const watch = { method: "get", path: "/v1/jobs/{jobId}:watch", operationId: "TrainerService_WatchJob", summary: "WatchJob replays a job's events", tag: "TrainerService" };

describe("operationMatches", () => {
  it.each([
    ["", true],
    ["   ", true],
    ["jobs/{jobId}:watch", true],
    ["WATCH", true],
    ["get", true],
    ["trainerservice_watchjob", true],
    ["replays", true],
    ["TrainerService", true],
    ["  watch  ", true],
    ["post", false],
    ["/v1/models", false],
  ])("%j matches WatchJob: %s", (phrase, want) => {
    expect(operationMatches(phrase, watch)).toBe(want);
  });
});

describe("operations", () => {
  it("lists every method of every path, with its service", () => {
    const doc: OpenAPIDocument = {
      paths: {
        "/v1/a": { get: { operationId: "A_Get", tags: ["A"] }, post: { operationId: "A_Post", tags: ["A"] }, parameters: {} as never },
        "/v1/b": { delete: { operationId: "B_Delete" } },
      },
    };
    expect(operations(doc).map((o) => `${o.method} ${o.path} ${o.operationId} ${o.tag}`)).toEqual([
      "get /v1/a A_Get A", "post /v1/a A_Post A", "delete /v1/b B_Delete undefined",
    ]);
  });

  it("counts the served document's operations", () => {
    const served = JSON.parse(readFileSync(resolve(process.cwd(), "../gen/openapi/shoal.swagger.json"), "utf8")) as OpenAPIDocument;
    const want = Object.values(served.paths ?? {}).reduce((n, item) => n + Object.keys(item).length, 0);
    expect(operations(served)).toHaveLength(want);
    for (const [method, path] of [["post", "/v1/models/{model}:predict"], ["post", "/predict"], ["post", "/v2/models/{name}/infer"]]) {
      expect(operations(served).some((o) => o.method === method && o.path === path), `${method} ${path}`).toBe(true);
    }
  });
});
