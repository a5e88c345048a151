import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { PredictPage } from "./PredictPage";
import { mockFetch } from "../test-utils";

afterEach(cleanup);

const models = [
  { path: "/v1/models", body: { models: [{ name: "other" }, { name: "fish", aliases: { production: 2 } }] } },
  { path: "/v1/loaded-models", body: { models: [{ model: "fish", version: 2, aliases: ["production"], ready: true }] } },
  { path: "/v1/models/fish/versions", body: { versions: [{ model: "fish", version: 1 }, { model: "fish", version: 2 }] } },
  { path: "/v1/models/fish/versions/2", body: { version: { model: "fish", version: 2, lineage: { dataset: "fishes" } } } },
  { path: "/v1/datasets/fishes/images", body: { images: [{ id: 42, label: "Gold Fish" }] } },
];

function drop(file: File) {
  fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });
}

describe("PredictPage", () => {
  it("classifies a dropped image with the served model and shows the answer", async () => {
    const calls = mockFetch([
      ...models,
      {
        method: "POST", path: "/v1/models/fish:predict",
        body: {
          model: "fish", version: 2, timings: { total: "0.004s" },
          results: [{ labels: [{ label: "Gold Fish", probability: 0.93 }, { label: "Mullet", probability: 0.05 }, { label: "Catfish", probability: 0.02 }] }],
        },
      },
    ]);
    render(<PredictPage />);
    // The model Inference serves comes first.
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    drop(new File([new Uint8Array([137, 80, 78, 71])], "goldie.png", { type: "image/png" }));

    expect(await screen.findByTestId("prediction-label")).toHaveProperty("textContent", "Gold Fish");
    expect(screen.getByText("93.0% confident")).toBeTruthy();
    expect(screen.getByTestId("prediction-version").textContent).toMatch(/^fish v2 · \d+ ms round trip · 4\.0 ms in the server$/);
    expect(screen.getByTestId("prediction").querySelectorAll(".bars li")).toHaveLength(3);
    // A picture of the predicted class, from the version's training data.
    await waitFor(() => expect(screen.getByAltText("a Gold Fish").getAttribute("src")).toBe("/v1/datasets/fishes/images/42/content?thumbnail_size=128"));

    const predict = calls.find((c) => c.method === "POST");
    expect(JSON.parse(predict!.body!)).toEqual({ images: ["iVBORw=="], topK: 5 });
  });

  it("asks a chosen version", async () => {
    const calls = mockFetch([
      ...models,
      { method: "POST", path: "/v1/models/fish:predict", body: { model: "fish", version: 1, results: [{ labels: [{ label: "Mullet", probability: 0.6 }] }] } },
    ]);
    render(<PredictPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: "v1" })).toHaveLength(1));
    fireEvent.change(screen.getByTestId("predict-version"), { target: { value: "1" } });
    drop(new File([new Uint8Array([1])], "m.png", { type: "image/png" }));
    await screen.findByTestId("prediction-label");
    expect(JSON.parse(calls.find((c) => c.method === "POST")!.body!)).toMatchObject({ version: 1 });
  });

  it("names each version by architecture, test accuracy and aliases, newest first", async () => {
    mockFetch([
      {
        path: "/v1/models/fish/versions",
        body: {
          versions: [
            { model: "fish", version: 1, architecture: "small-cnn" },
            { model: "fish", version: 2, architecture: "resnet-small", metrics: { testAccuracy: 0.912 }, aliases: ["production"] },
          ],
        },
      },
      ...models,
    ]);
    render(<PredictPage />);
    await waitFor(() => expect(screen.getAllByRole("option", { name: /^v1/ })).toHaveLength(1));
    const names = [...(screen.getByTestId("predict-version") as HTMLSelectElement).options].map((o) => o.textContent);
    expect(names).toEqual(["production (v2)", "v2 · resnet-small · 91.2% test (production)", "v1 · small-cnn"]);
  });

  it("keeps the chosen image's name and a way to change it under the preview", async () => {
    mockFetch([...models, { method: "POST", path: "/v1/models/fish:predict", body: { model: "fish", version: 2, results: [{ labels: [{ label: "Mullet", probability: 0.6 }] }] } }]);
    render(<PredictPage />);
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    expect(screen.getByTestId("dropzone").textContent).toBe("Drop an image here, click to choose one, or paste it.");
    drop(new File([new Uint8Array([1])], "mullet.png", { type: "image/png" }));
    await screen.findByTestId("prediction-label");
    expect(screen.getByTestId("dropzone").textContent).toBe("mullet.png · drop, click or paste to ask about another image");
  });

  it("shows a refused image as a readable message", async () => {
    mockFetch([
      ...models,
      { method: "POST", path: "/v1/models/fish:predict", status: 400, body: { code: 3, message: "image 0: not an image: unknown format", details: [] } },
    ]);
    render(<PredictPage />);
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    drop(new File([new Uint8Array([1, 2])], "notes.png", { type: "image/png" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Invalid request: image 0: not an image: unknown format×");
    expect(screen.queryByTestId("prediction")).toBeNull();
  });

  it("classifies a pasted image", async () => {
    mockFetch([
      ...models,
      { method: "POST", path: "/v1/models/fish:predict", body: { model: "fish", version: 2, results: [{ labels: [{ label: "Catfish", probability: 0.7 }] }] } },
    ]);
    render(<PredictPage />);
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    const paste = new Event("paste");
    Object.defineProperty(paste, "clipboardData", { value: { files: [new File([new Uint8Array([1])], "clip.png", { type: "image/png" })] } });
    act(() => { window.dispatchEvent(paste); });
    expect(await screen.findByTestId("prediction-label")).toHaveProperty("textContent", "Catfish");
    expect(screen.getByAltText("your image")).toBeTruthy();
  });

  it("refuses a file that is not an image before sending it", async () => {
    const calls = mockFetch(models);
    render(<PredictPage />);
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    drop(new File(["hello"], "notes.txt", { type: "text/plain" }));
    expect((await screen.findByRole("alert")).textContent).toContain("notes.txt is not an image");
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });

  it("points to training when there is no model", async () => {
    mockFetch([{ path: "/v1/models", body: { models: [] } }, { path: "/v1/loaded-models", body: { models: [] } }]);
    render(<PredictPage />);
    expect(await screen.findByText(/No model in the registry yet/)).toBeTruthy();
  });
});
