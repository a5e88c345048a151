import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { App } from "./App";
import { SessionProvider } from "./session";
import { clearToken, getToken, setToken, takeTokenFromFragment } from "./api/auth";
import { mockFetch } from "./test-utils";

const anonymous = { caller: { name: "anonymous", scopes: ["SCOPE_PREDICT"], anonymous: true }, authEnabled: true };
const closed = { caller: { name: "anonymous", scopes: [], anonymous: true }, authEnabled: true };
const admin = { caller: { name: "admin (bootstrap)", scopes: ["SCOPE_PREDICT", "SCOPE_READ", "SCOPE_WRITE", "SCOPE_ADMIN"] }, authEnabled: true };
const viewer = { caller: { name: "viewer", scopes: ["SCOPE_READ"] }, authEnabled: true };
const predictor = { caller: { name: "kiosk", scopes: ["SCOPE_PREDICT"] }, authEnabled: true };
const refused = { status: 401, body: { code: 16, message: "the token is not valid: unknown, revoked or expired" } };
const needsToken = { status: 401, body: { code: 16, message: "this call needs a token with the read scope" } };

// server answers like Shoal with tokens: good (admin), view (read) and
// kiosk (predict); anonymous callers may predict.
function server(anon: unknown = anonymous) {
  const routes = [
    { path: "/v1/caller", auth: null, body: anon },
    { path: "/v1/caller", auth: "Bearer good", body: admin },
    { path: "/v1/caller", auth: "Bearer view", body: viewer },
    { path: "/v1/caller", auth: "Bearer kiosk", body: predictor },
    { path: "/v1/caller", ...refused },
    { path: "/v1/loaded-models", body: { models: [{ model: "fish", version: "2", aliases: ["production"], ready: true }] } },
    { method: "POST", path: "/v1/models/fish:predict", body: { model: "fish", version: "2", results: [{ labels: [{ label: "Gold Fish", probability: 0.9 }] }] } },
    ...["good", "view"].flatMap((t) => [
      { path: "/v1/datasets", auth: `Bearer ${t}`, body: { datasets: [{ name: "fishes", imageCount: "3" }] } },
      { path: "/v1/datasets/fishes/stats", auth: `Bearer ${t}`, body: { imageCount: "3", counts: [] } },
      { path: "/v1/datasets/fishes/snapshots", auth: `Bearer ${t}`, body: { snapshots: [] } },
      { path: "/v1/models", auth: `Bearer ${t}`, body: { models: [] } },
    ]),
    { path: /^\/v1\//, ...needsToken },
  ];
  return mockFetch(routes);
}

function renderApp() {
  return render(<SessionProvider><App /></SessionProvider>);
}

async function logIn(token: string) {
  fireEvent.change(await screen.findByTestId("login-token"), { target: { value: token } });
  fireEvent.click(within(screen.getByTestId("login")).getByRole("button", { name: "Log in" }));
}

beforeEach(() => {
  clearToken();
  sessionStorage.clear();
});
afterEach(cleanup);

describe("login", () => {
  it("asks an anonymous caller to log in on the Datasets page, then shows it with the token", async () => {
    window.history.replaceState(null, "", "/datasets");
    const calls = server();
    renderApp();
    expect((await screen.findByTestId("login-reason")).textContent).toBe("The Datasets page needs a token with the read scope.");
    expect(screen.getByTestId("login").textContent).toContain("./data/admin-token");
    expect(screen.getByTestId("login").textContent).toContain("shoal tokens create");
    expect(calls.some((c) => c.url.startsWith("/v1/datasets"))).toBe(false);

    await logIn("typo");
    expect((await screen.findByRole("alert")).textContent).toContain("The server does not know this token");
    expect(getToken()).toBeNull();

    await logIn("good");
    await screen.findByRole("button", { name: /fishes/ });
    expect(getToken()).toBe("good");
    expect(sessionStorage.getItem("shoal.token")).toBe("good");
    expect(screen.getByTestId("caller-name").textContent).toBe("admin (bootstrap)");
    expect(screen.getByLabelText("scopes").textContent).toBe("predictreadwriteadmin");
    const apiCalls = calls.filter((c) => c.url.startsWith("/v1/datasets"));
    expect(apiCalls.length).toBeGreaterThan(0);
    expect(apiCalls.every((c) => c.authorization === "Bearer good")).toBe(true);
  });

  it("logs out: the token is forgotten and the page asks again", async () => {
    window.history.replaceState(null, "", "/datasets");
    setToken("good");
    server();
    renderApp();
    await screen.findByRole("button", { name: /fishes/ });
    fireEvent.click(screen.getByTestId("logout"));
    await screen.findByTestId("login");
    expect(getToken()).toBeNull();
    expect(sessionStorage.length).toBe(0);
    expect(screen.getByTestId("caller-name").textContent).toBe("not logged in");
  });

  it("takes the token of a login link and clears it from the address", async () => {
    window.history.replaceState(null, "", "/models#token=good");
    const calls = server();
    takeTokenFromFragment(); // as main.tsx does before the first render
    expect(window.location.pathname + window.location.hash).toBe("/models");
    renderApp();
    await screen.findByRole("heading", { name: "Models" });
    // The heading shows before the list is asked for; its answer shows after.
    await screen.findByText(/No model yet/);
    expect(screen.getByTestId("caller-name").textContent).toBe("admin (bootstrap)");
    expect(calls.find((c) => c.url === "/v1/models?pageSize=100")?.authorization).toBe("Bearer good");
  });

  it("takes a login link opened in a tab already showing the console", async () => {
    window.history.replaceState(null, "", "/models");
    server();
    renderApp();
    await screen.findByTestId("login");
    act(() => {
      window.history.replaceState(null, "", "/models#token=view");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    });
    await screen.findByRole("heading", { name: "Models" });
    expect(window.location.hash).toBe("");
    expect(screen.getByTestId("caller-name").textContent).toBe("viewer");
  });

  it("drops a stored token the server refuses, and says so", async () => {
    window.history.replaceState(null, "", "/models");
    setToken("revoked");
    server();
    renderApp();
    expect((await screen.findByTestId("login-reason")).textContent).toMatch(/refused the token/);
    expect(getToken()).toBeNull();
  });

  it("shows the login page when a call answers 401 (a token revoked while in use)", async () => {
    window.history.replaceState(null, "", "/datasets");
    setToken("good");
    server();
    renderApp();
    await screen.findByRole("button", { name: /fishes/ });
    // The server forgets the token: every call with it now answers 401.
    mockFetch([{ path: "/v1/caller", auth: null, body: anonymous }, { path: /.*/, ...refused }]);
    fireEvent.click(screen.getByRole("link", { name: "Models" }));
    expect((await screen.findByTestId("login-reason")).textContent).toMatch(/refused the token/);
    expect(getToken()).toBeNull();
  });

  it("keeps the Predict page working without a token when prediction is open", async () => {
    window.history.replaceState(null, "", "/");
    const calls = server();
    renderApp();
    await waitFor(() => expect((screen.getByTestId("predict-model") as HTMLSelectElement).value).toBe("fish"));
    expect(screen.getByRole("option", { name: "production (v2)" })).toBeTruthy();
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [new File([new Uint8Array([1])], "f.png", { type: "image/png" })] } });
    expect((await screen.findByTestId("prediction-label")).textContent).toBe("Gold Fish");
    expect(screen.queryByTestId("login")).toBeNull();
    // Only what the predict scope opens: no registry, no dataset.
    expect(calls.filter((c) => c.url !== "/v1/caller").map((c) => `${c.method} ${c.url}`)).toEqual(["GET /v1/loaded-models", "POST /v1/models/fish:predict"]);
    expect(calls.every((c) => c.authorization === null)).toBe(true);
    expect(screen.getByTestId("caller-name").textContent).toBe("not logged in");
    expect(screen.getByTestId("login-button")).toBeTruthy();
  });

  it("asks for a token on the Predict page too when anonymous callers may do nothing", async () => {
    window.history.replaceState(null, "", "/");
    server(closed);
    renderApp();
    expect((await screen.findByTestId("login-reason")).textContent).toBe("The Predict page needs a token with the predict scope.");
    expect(screen.queryByText("Predict without a token")).toBeNull();
  });

  it("tells a token without the page's scope that it lacks it", async () => {
    window.history.replaceState(null, "", "/models");
    setToken("kiosk");
    server();
    renderApp();
    expect((await screen.findByTestId("not-allowed")).textContent).toMatch(/needs the read scope; the token kiosk has predict/);
  });

  it("says so when the server checks no token", async () => {
    window.history.replaceState(null, "", "/models");
    mockFetch([
      { path: "/v1/caller", body: { caller: { name: "anonymous", scopes: ["SCOPE_PREDICT", "SCOPE_READ", "SCOPE_WRITE", "SCOPE_ADMIN"], anonymous: true }, authEnabled: false } },
      { path: "/v1/models", body: { models: [] } },
    ]);
    renderApp();
    await screen.findByRole("heading", { name: "Models" });
    expect(screen.getByTestId("caller").textContent).toBe("authentication off");
  });
});

describe("thumbnails", () => {
  it("load with the token, as blob: URLs", async () => {
    window.history.replaceState(null, "", "/datasets");
    setToken("view");
    const created: Blob[] = [];
    URL.createObjectURL = vi.fn((b: Blob) => { created.push(b); return `blob:http://localhost/${created.length}`; });
    URL.revokeObjectURL = vi.fn();
    const calls = mockFetch([
      { path: "/v1/caller", auth: "Bearer view", body: viewer },
      { path: "/v1/datasets", body: { datasets: [{ name: "fishes", imageCount: "1" }] } },
      { path: "/v1/datasets/fishes/stats", body: { imageCount: "1", counts: [{ split: "SPLIT_TRAIN", label: "Gold Fish", count: "1" }] } },
      { path: "/v1/datasets/fishes/snapshots", body: { snapshots: [] } },
      { path: "/v1/datasets/fishes/images", body: { images: [{ id: "7", fileName: "g.png" }], totalSize: "1" } },
      { path: "/v1/datasets/fishes/images/7/content", body: "PNG" },
    ]);
    renderApp();
    const img = await screen.findByAltText("Gold Fish g.png");
    await waitFor(() => expect(img.getAttribute("src")).toBe("blob:http://localhost/1"));
    expect(calls.find((c) => c.url.startsWith("/v1/datasets/fishes/images/7/content"))?.authorization).toBe("Bearer view");
    cleanup();
    expect(URL.revokeObjectURL).toHaveBeenCalledWith("blob:http://localhost/1");
  });
});
