import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  authFetch, authorization, can, clearToken, fetchCaller, getToken, noteResponse, onUnauthorized, setToken,
  takeTokenFromFragment,
} from "./auth";
import { api, ok } from "./client";
import { sendUpload } from "./upload";
import { mockFetch } from "../test-utils";

beforeEach(() => {
  clearToken();
  sessionStorage.clear();
  localStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterEach(() => clearToken());

describe("the token store", () => {
  it("keeps the token in sessionStorage only", () => {
    expect(getToken()).toBeNull();
    setToken("shoal_abc");
    expect(getToken()).toBe("shoal_abc");
    expect(sessionStorage.getItem("shoal.token")).toBe("shoal_abc");
    expect(localStorage.length).toBe(0);
    expect(document.cookie).toBe("");
    clearToken();
    expect(getToken()).toBeNull();
    expect(sessionStorage.length).toBe(0);
  });

  it("holds the token in memory where storage is refused", () => {
    const setItem = vi.spyOn(Storage.prototype, "setItem").mockImplementation(() => {
      throw new DOMException("denied", "SecurityError");
    });
    setToken("shoal_mem");
    expect(setItem).toHaveBeenCalled();
    expect(getToken()).toBe("shoal_mem");
  });

  it("makes the Authorization header from it", () => {
    expect(authorization()).toBeUndefined();
    setToken("t1");
    expect(authorization()).toBe("Bearer t1");
    expect(authorization(null)).toBeUndefined();
    expect(authorization("t2")).toBe("Bearer t2");
  });
});

describe("takeTokenFromFragment", () => {
  const cases = [
    { name: "a login link", url: "/#token=shoal_xyz", token: "shoal_xyz", found: true, after: "/" },
    { name: "on a page with a query", url: "/models?m=fish#token=t%2B1", token: "t+1", found: true, after: "/models?m=fish" },
    { name: "beside another fragment value", url: "/#a=1&token=t2", token: "t2", found: true, after: "/#a=1" },
    { name: "an empty token", url: "/#token=", token: null, found: false, after: "/" },
    { name: "no token", url: "/datasets#top", token: null, found: false, after: "/datasets#top" },
  ];
  for (const c of cases) {
    it(`${c.name}: stores it and removes it from the address`, () => {
      window.history.replaceState(null, "", c.url);
      const replace = vi.spyOn(window.history, "replaceState");
      expect(takeTokenFromFragment()).toBe(c.found);
      expect(getToken()).toBe(c.token);
      expect(window.location.pathname + window.location.search + window.location.hash).toBe(c.after);
      // Replaced, not pushed: the back button does not bring the token back.
      if (c.url !== c.after) expect(replace).toHaveBeenCalledTimes(1);
    });
  }
});

describe("the typed client's middleware", () => {
  it("sends the token on every call, and none without one", async () => {
    const calls = mockFetch([{ path: "/v1/datasets", body: { datasets: [] } }]);
    await ok(api.GET("/v1/datasets"));
    setToken("secret-1");
    await ok(api.GET("/v1/datasets"));
    expect(calls.map((c) => c.authorization)).toEqual([null, "Bearer secret-1"]);
  });

  it("reports a 401 to the listeners, saying whether the call had a token", async () => {
    mockFetch([{ path: "/v1/datasets", status: 401, body: { code: 16, message: "this call needs a token with the read scope" } }]);
    const heard: boolean[] = [];
    const stop = onUnauthorized((hadToken) => heard.push(hadToken));
    await expect(ok(api.GET("/v1/datasets"))).rejects.toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    setToken("revoked");
    await expect(ok(api.GET("/v1/datasets"))).rejects.toMatchObject({ status: 401 });
    stop();
    await expect(ok(api.GET("/v1/datasets"))).rejects.toMatchObject({ status: 401 });
    expect(heard).toEqual([false, true]);
  });

  it("does not report a 403: the token is known, it lacks a scope", async () => {
    mockFetch([{ method: "PUT", path: "/v1/models/fish/aliases/production", status: 403, body: { code: 7, message: "lacks the write scope" } }]);
    const heard: boolean[] = [];
    const stop = onUnauthorized((h) => heard.push(h));
    setToken("viewer");
    await expect(ok(api.PUT("/v1/models/{model}/aliases/{alias}", { params: { path: { model: "fish", alias: "production" } }, body: { version: 1 } })))
      .rejects.toMatchObject({ status: 403, code: "PERMISSION_DENIED" });
    stop();
    expect(heard).toEqual([]);
  });
});

describe("noteResponse", () => {
  it("ignores the 401 of a call sent with a token that is no longer the stored one", () => {
    const heard: boolean[] = [];
    const stop = onUnauthorized((h) => heard.push(h));
    setToken("new");
    noteResponse(401, "Bearer old");
    noteResponse(401, undefined);
    noteResponse(200, "Bearer new");
    noteResponse(401, "Bearer new");
    stop();
    expect(heard).toEqual([true]);
  });
});

describe("authFetch", () => {
  it("adds the token to NDJSON streams and image requests", async () => {
    const calls = mockFetch([{ path: /content$/, body: "" }]);
    setToken("t3");
    await authFetch("/v1/datasets/d/images/1/content", { headers: { Accept: "image/*" } });
    expect(calls[0].authorization).toBe("Bearer t3");
  });
});

describe("sendUpload", () => {
  it("sends the token with the upload stream", async () => {
    const sent: Record<string, string> = {};
    class FakeXHR {
      status = 200;
      responseText = JSON.stringify({ counts: { added: "1" } });
      upload = { onprogress: null };
      onload: (() => void) | null = null;
      onerror: (() => void) | null = null;
      open() {}
      setRequestHeader(k: string, v: string) { sent[k] = v; }
      send() { queueMicrotask(() => this.onload?.()); }
    }
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    setToken("uploader");
    await expect(sendUpload(new Blob(["{}\n"]), () => {})).resolves.toMatchObject({ counts: { added: "1" } });
    expect(sent.Authorization).toBe("Bearer uploader");
  });
});

describe("fetchCaller", () => {
  it("asks GetCaller with the given token and reads its scopes", async () => {
    const calls = mockFetch([
      { path: "/v1/caller", auth: "Bearer good", body: { caller: { name: "viewer", scopes: ["SCOPE_READ"], anonymous: false }, authEnabled: true } },
      { path: "/v1/caller", auth: null, body: { caller: { name: "anonymous", scopes: ["SCOPE_PREDICT"], anonymous: true }, authEnabled: true } },
      { path: "/v1/caller", status: 401, body: { code: 16, message: "the token is not valid" } },
    ]);
    const viewer = await fetchCaller("good");
    expect(viewer).toEqual({ name: "viewer", scopes: ["read"], anonymous: false, authEnabled: true });
    expect(can(viewer, "read")).toBe(true);
    expect(can(viewer, "write")).toBe(false);
    const anon = await fetchCaller(null);
    expect(anon).toMatchObject({ anonymous: true, scopes: ["predict"] });
    await expect(fetchCaller("bad")).rejects.toMatchObject({ status: 401 });
    expect(calls.map((c) => c.authorization)).toEqual(["Bearer good", null, "Bearer bad"]);
  });

  it("lets everyone do everything when the server checks no credential", async () => {
    mockFetch([{ path: "/v1/caller", body: { caller: { name: "anonymous", anonymous: true }, authEnabled: false } }]);
    const c = await fetchCaller(null);
    expect(can(c, "admin")).toBe(true);
    expect(can(null, "predict")).toBe(false);
  });
});
