import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, screen } from "@testing-library/react";
import { DatasetsPage } from "./DatasetsPage";
import { mockFetch, renderAs } from "../test-utils";

afterEach(cleanup);
beforeEach(() => window.history.replaceState(null, "", "/datasets?d=fishes"));

const routes = [
  { path: "/v1/datasets", body: { datasets: [{ name: "fishes", imageCount: 2 }] } },
  { path: "/v1/datasets/fishes/stats", body: { imageCount: 2, counts: [{ split: "SPLIT_TRAIN", label: "Gold Fish", count: 2 }] } },
  { path: "/v1/datasets/fishes/snapshots", body: { snapshots: [{ version: "1", imageCount: 2 }] } },
  { path: "/v1/datasets/fishes/images", body: { images: [], totalSize: "0" } },
];

describe("DatasetsPage", () => {
  it("lets a read-only token browse, without the forms that change things", async () => {
    mockFetch(routes);
    renderAs(<DatasetsPage />, ["read"]);
    await screen.findByTestId("dataset-counts");
    await screen.findByTestId("snapshots");
    expect(screen.queryByTestId("dataset-name")).toBeNull();
    expect(screen.queryByTestId("upload-files")).toBeNull();
    expect(screen.queryByRole("button", { name: "Take a snapshot" })).toBeNull();
    expect(screen.getByTestId("read-only").textContent).toMatch(/write scope/);
  });

  it("gives a token with write the create, upload and snapshot forms", async () => {
    mockFetch(routes);
    renderAs(<DatasetsPage />, ["read", "write"]);
    await screen.findByTestId("upload-files");
    expect(screen.getByTestId("dataset-name")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Take a snapshot" })).toBeTruthy();
    expect(screen.queryByTestId("read-only")).toBeNull();
  });
});
