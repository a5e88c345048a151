import { vi } from "vitest";
import { createElement } from "react";
import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { SessionContext, staticSession } from "./session";
import type { Caller, Scope } from "./api/auth";

type Route = { method?: string; path: string | RegExp; status?: number; body: unknown; auth?: string | null };

// mockFetch answers fetch calls from a table of routes (the first match
// wins) and records each call as "METHOD /path?query", with its body and
// Authorization header.
export function mockFetch(routes: Route[]) {
  const calls: { method: string; url: string; body?: string; authorization: string | null }[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(new URL(String(input), "http://localhost"), init);
    const url = new URL(req.url);
    const method = req.method.toUpperCase();
    const body = method === "GET" ? undefined : await req.text();
    const authorization = req.headers.get("Authorization");
    calls.push({ method, url: url.pathname + url.search, body, authorization });
    const path = decodeURIComponent(url.pathname);
    // A route with auth answers only calls with that Authorization header
    // (null: none).
    const route = routes.find((r) => (r.method ?? "GET") === method && (typeof r.path === "string" ? r.path === path : r.path.test(path)) &&
      (r.auth === undefined || r.auth === authorization));
    if (!route) return new Response(JSON.stringify({ code: 5, message: `no route for ${method} ${path}`, details: [] }), { status: 404 });
    const text = typeof route.body === "string" ? route.body : JSON.stringify(route.body);
    return new Response(text, { status: route.status ?? 200, headers: { "Content-Type": "application/json" } });
  });
  vi.stubGlobal("fetch", fn);
  return calls;
}

// renderAs renders ui for a caller with the given scopes, on a server with
// authentication on.
export function renderAs(ui: ReactElement, scopes: Scope[], name = "tester") {
  const caller: Caller = { name, scopes, anonymous: false, authEnabled: true };
  return render(createElement(SessionContext.Provider, { value: staticSession(caller) }, ui));
}
