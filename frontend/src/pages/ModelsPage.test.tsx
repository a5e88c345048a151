import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { ModelsPage } from "./ModelsPage";
import { mockFetch, renderAs } from "../test-utils";

afterEach(cleanup);
beforeEach(() => {
  window.history.replaceState(null, "", "/models?m=fish");
  window.confirm = () => true;
});

const versions = [
  { model: "fish", version: 1, aliases: ["production"], labels: ["Bag", "Shoe"], metrics: { testAccuracy: 0.8 } },
  {
    model: "fish", version: 2, aliases: [], labels: ["Bag", "Shoe"], architecture: "small-cnn",
    lineage: { dataset: "fashion", snapshotVersion: 3, jobId: "abcdef123456" },
    metrics: {
      testAccuracy: 0.9, testExamples: 20,
      confusionMatrix: { size: 2, counts: [9, 1, 1, 9] },
      perClass: [{ label: "Bag", precision: 0.9, recall: 0.9, f1: 0.9, support: "10" }, { label: "Shoe", precision: 0.9, recall: 0.9, f1: 0.9, support: "10" }],
    },
  },
];
const routes = [
  { path: "/v1/models", body: { models: [{ name: "fish", latestVersion: 2, aliases: { production: 1 } }] } },
  { path: "/v1/models/fish/versions", body: { versions } },
];

describe("ModelsPage", () => {
  it("shows the newest version's metrics, confusion matrix and lineage", async () => {
    mockFetch(routes);
    render(<ModelsPage />);
    const detail = await screen.findByTestId("version-detail");
    expect(within(detail).getByRole("heading", { name: "fish v2" })).toBeTruthy();
    expect(within(detail).getAllByRole("cell").slice(0, 4).map((c) => c.textContent)).toEqual(["9", "1", "1", "9"]);
    expect(within(detail).getByLabelText("lineage").textContent).toBe("dataset fashion snapshot v3→job abcdef12→fish v2");
  });

  it("promotes a version to production", async () => {
    const calls = mockFetch([...routes, { method: "PUT", path: "/v1/models/fish/aliases/production", body: { alias: {} } }]);
    render(<ModelsPage />);
    fireEvent.click(await screen.findByTestId("promote-2"));
    await waitFor(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    expect(JSON.parse(calls.find((c) => c.method === "PUT")!.body!)).toEqual({ version: 2 });
    expect(screen.queryByTestId("promote-1")).toBeNull(); // already production
  });

  it("explains why a version cannot be deleted", async () => {
    mockFetch([
      ...routes,
      { method: "DELETE", path: "/v1/models/fish/versions/1", status: 400, body: { code: 9, message: "version 1 is aliased as production; move the alias first", details: [] } },
    ]);
    render(<ModelsPage />);
    // The table shows before the versions arrive; wait for the row itself.
    const row = await waitFor(() => {
      const r = screen.getByTestId("versions").querySelector<HTMLElement>("tr[data-version='1']");
      if (!r) throw new Error("no row for version 1 yet");
      return r;
    });
    fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Not possible now: version 1 is aliased as production; move the alias first×");
  });

  const actions = [
    { scopes: ["read"] as const, promote: false, remove: false },
    { scopes: ["read", "write"] as const, promote: true, remove: false },
    { scopes: ["read", "admin"] as const, promote: false, remove: true },
    { scopes: ["predict", "read", "write", "admin"] as const, promote: true, remove: true },
  ];
  for (const c of actions) {
    it(`shows a token with ${c.scopes.join(",")} ${c.promote ? "a" : "no"} Promote and ${c.remove ? "a" : "no"} Delete button`, async () => {
      mockFetch(routes);
      renderAs(<ModelsPage />, [...c.scopes]);
      await screen.findByTestId("version-detail"); // browsing works with read alone
      expect(screen.queryByTestId("promote-2") !== null).toBe(c.promote);
      expect(screen.queryAllByRole("button", { name: "Delete" }).length).toBe(c.remove ? 2 : 0);
    });
  }
});
