// The console's credential, in one place: the bearer token of this browser
// tab, the SDK's client that carries it on every request, and who it stands
// for. The token lives in sessionStorage only (never localStorage, never a
// cookie): it ends with the tab, and the browser never sends it on its own,
// so no other site can make a request with it.
import { ShoalClient, ok } from "@shoal/client";

const storageKey = "shoal.token";

// session is sessionStorage, or undefined where storage is refused (a
// browser's privacy settings): the console then works until the page is
// reloaded, holding the token in memory.
let memory: string | null = null;
function session(): Storage | undefined {
  try {
    return globalThis.sessionStorage ?? undefined;
  } catch {
    return undefined;
  }
}

// getToken returns the token of this tab, or null when there is none.
export function getToken(): string | null {
  try {
    return session()?.getItem(storageKey) ?? memory;
  } catch {
    return memory;
  }
}

export function setToken(token: string): void {
  memory = token;
  try {
    session()?.setItem(storageKey, token);
  } catch {
    // kept in memory only
  }
}

export function clearToken(): void {
  memory = null;
  try {
    session()?.removeItem(storageKey);
  } catch {
    // nothing stored
  }
}

// authorization is the Authorization header's value for token (by default
// the stored one), or undefined without a token.
export function authorization(token: string | null = getToken()): string | undefined {
  return token ? `Bearer ${token}` : undefined;
}

// Listeners hear of every 401 answered to a request that carried the token
// stored now (or none): the server does not know the token, or the call
// needs one. An answer to a request sent with an older token is ignored, so
// a slow call from before a login cannot log the new token out.
type Listener = (hadToken: boolean) => void;
const listeners = new Set<Listener>();

export function onUnauthorized(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// noteResponse tells the listeners of a 401 to a request sent with the
// Authorization header sent (undefined: none).
export function noteResponse(status: number, sent: string | null | undefined): void {
  if (status !== 401 || (sent ?? undefined) !== authorization()) return;
  for (const fn of [...listeners]) fn(sent !== undefined && sent !== null);
}

// shoal is the console's client of the API (the TypeScript SDK): its base
// URL is the page's origin, as the console is served by the same server as
// the API (or, in development, by Vite's proxy); every call, stream and
// upload carries this tab's token, read at each call, and reports its 401s.
export const shoal = new ShoalClient({
  baseUrl: globalThis.location?.origin ?? "",
  token: getToken,
  onResponse: (status, token) => noteResponse(status, authorization(token ?? null)),
});

// authFetch is fetch with the token, for the calls the typed client does
// not make (image bytes).
export function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return shoal.fetch(path, init);
}

// takeTokenFromFragment reads a login link's token (`/#token=…`: a URL
// fragment, which the browser never sends to a server), stores it, and
// removes it from the address bar and the history entry at once. It
// returns whether the address held one.
export function takeTokenFromFragment(loc: Location = window.location, history: History = window.history): boolean {
  const params = new URLSearchParams(loc.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token === null) return false;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", loc.pathname + loc.search + (rest ? `#${rest}` : ""));
  if (token.trim()) setToken(token.trim());
  return token.trim() !== "";
}

// Scope is what a token may do, as the console names it.
export type Scope = "predict" | "read" | "write" | "admin";
export const scopes: Scope[] = ["predict", "read", "write", "admin"];

// Caller is who this tab's calls run as.
export type Caller = {
  name: string;
  scopes: Scope[];
  anonymous: boolean;
  // authEnabled is false when the server checks no credential: every
  // caller may do everything.
  authEnabled: boolean;
};

// can says whether caller may make calls that need scope.
export function can(caller: Caller | null | undefined, scope: Scope): boolean {
  if (!caller) return false;
  return !caller.authEnabled || caller.scopes.includes(scope);
}

// fetchCaller asks the server who token (by default the stored one; null:
// no token) is, with GetCaller (`GET /v1/caller`, open to everyone). A token
// the server does not know throws a ShoalError with status 401.
export async function fetchCaller(token: string | null = getToken()): Promise<Caller> {
  const client = new ShoalClient({ baseUrl: shoal.baseUrl, token });
  const body = await ok(client.api.GET("/v1/caller"));
  return {
    name: body.caller?.name ?? "anonymous",
    scopes: (body.caller?.scopes ?? [])
      .map((s) => s.replace(/^SCOPE_/, "").toLowerCase())
      .filter((s): s is Scope => (scopes as string[]).includes(s)),
    anonymous: body.caller?.anonymous ?? !token,
    authEnabled: body.authEnabled ?? true,
  };
}
