import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { ApiPage } from "./ApiPage";
import type { OpenAPIDocument } from "./ApiPage";
import { App } from "../App";
import { mockFetch, renderAs } from "../test-utils";

// The document the server serves at /openapi.json (Vitest runs in frontend/).
const doc = JSON.parse(readFileSync(resolve(process.cwd(), "../gen/openapi/shoal.swagger.json"), "utf8")) as OpenAPIDocument;
const operations = Object.values(doc.paths ?? {}).reduce((n, item) => n + Object.keys(item).length, 0);
const services = [...new Set(Object.values(doc.paths ?? {}).flatMap((item) => Object.values(item).map((op) => (op as { tags: string[] }).tags[0])))];

// The reference (Swagger UI) is loaded when the page opens; its operations
// are .opblock elements, each with its path.
const shownOps = () => [...document.querySelectorAll(".opblock")];
const shownPaths = () => shownOps().map((o) => o.querySelector(".opblock-summary-path")?.textContent?.replace(/\u200b/g, ""));

afterEach(() => {
  cleanup();
  window.location.hash = "";
});
beforeEach(() => {
  // Swagger UI scrolls to a deep-linked operation; jsdom has no layout.
  vi.spyOn(window, "scrollTo").mockImplementation(() => {});
  window.history.replaceState(null, "", "/api");
  mockFetch([{ path: "/openapi.json", body: doc }]);
});

describe("ApiPage", () => {
  it("renders every operation of /openapi.json by service, in the console's dark theme", async () => {
    renderAs(<ApiPage />, ["read"]);
    await screen.findByTestId("api-reference");
    await waitFor(() => expect(shownOps()).toHaveLength(operations));
    for (const path of ["/v1/models/{model}:predict", "/predict", "/v2/models/{name}/infer", "/v2/health/ready"]) expect(shownPaths()).toContain(path);
    const tags = [...document.querySelectorAll(".opblock-tag")].map((t) => t.getAttribute("data-tag"));
    expect(tags.filter((t) => services.includes(t!))).toEqual(expect.arrayContaining(services));
    expect(screen.getByTestId("api-summary").textContent).toMatch(new RegExp(`^${operations} operations and ${Object.keys(doc.definitions ?? {}).length} messages`));
    expect(document.documentElement.classList.contains("dark-mode")).toBe(true);
    // The page shows the title and the filter itself, once.
    expect(document.querySelector(".swagger-ui .info")).toBeNull();
    expect(document.querySelector(".swagger-ui .operation-filter-input")).toBeNull();
    cleanup();
    expect(document.documentElement.classList.contains("dark-mode")).toBe(false);
  });

  it("opens an operation with its parameters and answer", async () => {
    renderAs(<ApiPage />, ["read"]);
    await waitFor(() => expect(shownOps()).toHaveLength(operations));
    const watch = shownOps().find((o) => o.id === "operations-TrainerService-TrainerService_WatchJob") as HTMLElement;
    expect(watch, "the WatchJob operation").toBeTruthy();
    fireEvent.click(watch.querySelector(".opblock-summary-control")!);
    expect(await within(watch).findByText("afterSequence")).toBeTruthy();
    expect(within(watch).getByText("jobId")).toBeTruthy();
    expect(watch.textContent).toMatch(/streaming responses/);
  });

  it("filters by path, method, operation or service, and says when nothing matches", async () => {
    renderAs(<ApiPage />, ["read"]);
    await waitFor(() => expect(shownOps()).toHaveLength(operations));
    const filter = screen.getByTestId("api-filter");
    fireEvent.change(filter, { target: { value: "watch" } });
    await waitFor(() => expect(shownOps().map((o) => o.id).sort()).toEqual([
      "operations-RegistryService-RegistryService_WatchAliases",
      "operations-RegistryService-RegistryService_WatchRollout",
      "operations-TrainerService-TrainerService_WatchJob",
    ]));
    expect(screen.getByTestId("api-matches").textContent).toBe(`3 of ${operations} operations match.`);
    fireEvent.change(filter, { target: { value: ":predict" } });
    await waitFor(() => expect(shownPaths()).toEqual(["/v1/models/{model}:predict"]));
    fireEvent.change(filter, { target: { value: "nothing like it" } });
    await waitFor(() => expect(shownOps()).toHaveLength(0));
    expect(screen.getByTestId("api-matches").textContent).toMatch(/No operation matches “nothing like it”/);
    fireEvent.change(filter, { target: { value: "" } });
    await waitFor(() => expect(shownOps()).toHaveLength(operations));
  });

  it("sends the console's token with Try it out", async () => {
    sessionStorage.setItem("shoal.token", "shoal_tryit");
    const calls = mockFetch([
      { path: "/openapi.json", body: doc },
      { path: "/v1/caller", body: { caller: { name: "tester", scopes: ["SCOPE_READ"] }, authEnabled: true } },
    ]);
    try {
      renderAs(<ApiPage />, ["read"]);
      await waitFor(() => expect(shownOps()).toHaveLength(operations));
      const caller = shownOps().find((o) => o.id === "operations-AuthService-AuthService_GetCaller") as HTMLElement;
      fireEvent.click(caller.querySelector(".opblock-summary-control")!);
      fireEvent.click(await within(caller).findByText("Try it out"));
      fireEvent.click(await within(caller).findByText("Execute"));
      await waitFor(() => expect(calls.find((c) => c.url === "/v1/caller")?.authorization).toBe("Bearer shoal_tryit"));
      // The request shown on the page leaves the token out.
      await within(caller).findByText("Server response");
      expect(caller.textContent).not.toContain("shoal_tryit");
    } finally {
      sessionStorage.removeItem("shoal.token");
    }
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
