import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { ApiPage, groups } from "./ApiPage";
import type { OpenAPIDocument } from "./ApiPage";
import { App } from "../App";
import { mockFetch, renderAs } from "../test-utils";

// The document the server serves at /openapi.json (Vitest runs in frontend/).
const doc = JSON.parse(readFileSync(resolve(process.cwd(), "../gen/openapi/shoal.swagger.json"), "utf8")) as OpenAPIDocument;
const operations = Object.values(doc.paths ?? {}).reduce((n, item) => n + Object.keys(item).length, 0);

afterEach(cleanup);
beforeEach(() => {
  window.history.replaceState(null, "", "/api");
  mockFetch([{ path: "/openapi.json", body: doc }]);
});

describe("ApiPage", () => {
  it("lists every operation of /openapi.json by service, and every message", async () => {
    renderAs(<ApiPage />, ["read"]);
    await screen.findByTestId("api-page");
    expect(screen.getAllByTestId("api-op")).toHaveLength(operations);
    expect(screen.getAllByTestId("api-service").map((s) => s.querySelector("h3")?.textContent)).toEqual(groups(doc).map((g) => g.tag));
    expect(screen.getAllByTestId("api-message")).toHaveLength(Object.keys(doc.definitions ?? {}).length);
    expect(screen.getByTestId("api-summary").textContent).toMatch(new RegExp(`^${operations} operations and \\d+ messages`));
  });

  it("shows an operation's parameters, its stream of messages, and links them to their fields", async () => {
    const { container } = renderAs(<ApiPage />, ["read"]);
    await screen.findByTestId("api-page");
    const watch = container.querySelector("details#TrainerService_WatchJob") as HTMLElement;
    expect(within(watch).getByText("/v1/jobs/{jobId}:watch")).toBeTruthy();
    expect(within(watch).getByText("afterSequence")).toBeTruthy();
    expect(watch.textContent).toMatch(/a stream of v1WatchJobResponse, one JSON line each/);
    const link = within(watch).getByRole("link", { name: "v1WatchJobResponse" });
    expect(link.getAttribute("href")).toBe("#schema-v1WatchJobResponse");
    const message = container.querySelector("#schema-v1WatchJobResponse") as HTMLElement;
    expect(within(message).getByText("sequence")).toBeTruthy();
    expect(container.querySelector("#schema-v1JobState")?.textContent).toMatch(/One of JOB_STATE_UNSPECIFIED, JOB_STATE_QUEUED/);
  });

  it("filters operations, keeping the messages they use", async () => {
    renderAs(<ApiPage />, ["read"]);
    fireEvent.change(await screen.findByTestId("api-filter"), { target: { value: "watch" } });
    await waitFor(() => expect(screen.getAllByTestId("api-op").map((o) => o.id).sort()).toEqual(["RegistryService_WatchAliases", "RegistryService_WatchRollout", "TrainerService_WatchJob"]));
    // The messages they use stay, so their links lead somewhere.
    for (const m of ["v1WatchJobResponse", "v1EpochMetrics", "rpcStatus", "v1WatchAliasesResponse"]) {
      expect(document.getElementById(`schema-${m}`), m).toBeTruthy();
    }
    expect(document.getElementById("schema-v1PredictResponse")).toBeNull();
    fireEvent.change(screen.getByTestId("api-filter"), { target: { value: "nothing like it" } });
    expect(await screen.findByText(/No operation matches/)).toBeTruthy();
  });

  it("says why when the document cannot be had", async () => {
    mockFetch([{ path: "/openapi.json", status: 503, body: { code: 14, message: "shutting down" } }]);
    renderAs(<ApiPage />, ["read"]);
    expect((await screen.findByRole("alert")).textContent).toMatch(/shutting down/);
  });

  it("is open to a token without any scope, from the nav", async () => {
    window.history.replaceState(null, "", "/");
    renderAs(<App />, []);
    fireEvent.click(screen.getByRole("link", { name: "API" }));
    expect(window.location.pathname).toBe("/api");
    await screen.findByTestId("api-page");
    expect(screen.queryByTestId("not-allowed")).toBeNull();
  });
});
