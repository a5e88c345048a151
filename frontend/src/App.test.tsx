import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App, krakenClicks } from "./App";
import { mockFetch } from "./test-utils";

beforeEach(() => {
  window.history.replaceState(null, "", "/");
  mockFetch([
    { path: "/v1/models", body: { models: [] } },
    { path: "/v1/loaded-models", body: { models: [] } },
  ]);
});
afterEach(cleanup);

describe("App", () => {
  it("wakes the Kraken on the 20th click on the title, not before", () => {
    render(<App />);
    const title = screen.getByTestId("title");
    for (let i = 0; i < krakenClicks - 1; i++) fireEvent.click(title);
    expect(screen.queryByTestId("kraken")).toBeNull();
    fireEvent.click(title);
    expect(screen.getByTestId("kraken")).toBeTruthy();
    fireEvent.click(screen.getByTestId("kraken"));
    expect(screen.queryByTestId("kraken")).toBeNull();
  });

  it("navigates between pages without reloading", async () => {
    mockFetch([{ path: /.*/, body: {} }]);
    render(<App />);
    act(() => fireEvent.click(screen.getByRole("link", { name: "Models" })));
    expect(window.location.pathname).toBe("/models");
    await waitFor(() => expect(screen.getByRole("heading", { name: "Models" })).toBeTruthy());
    expect(screen.getByRole("link", { name: "Models" }).className).toBe("active");
  });

  it("says so for an unknown page", () => {
    window.history.replaceState(null, "", "/nowhere");
    render(<App />);
    expect(screen.getByText("Lost at sea")).toBeTruthy();
  });
});
