import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { can as callerCan, clearToken, fetchCaller, getToken, onUnauthorized, setToken, takeTokenFromFragment } from "./api/auth";
import type { Caller, Scope } from "./api/auth";
import { ApiError } from "./api/errors";

// Session is who the console runs as, and how to change it.
export type Session = {
  // caller is null until the server has said who this tab is.
  caller: Caller | null;
  // error is why the server could not be asked (unreachable).
  error: unknown;
  // loginReason, when set, asks for the login page, saying why.
  loginReason: string | null;
  // generation changes at every login and logout, so pages load again.
  generation: number;
  can: (scope: Scope) => boolean;
  // login checks token with the server and, if it is valid, keeps it;
  // a token the server does not know throws.
  login: (token: string) => Promise<void>;
  logout: () => void;
  askLogin: (reason: string) => void;
  cancelLogin: () => void;
  retry: () => void;
};

export const tokenRefused = "The server refused the token: it is unknown, revoked or expired. Log in with another one.";
export const tokenNeeded = "This needs a token: log in to go on.";

// openSession is what a page sees outside a SessionProvider (a page
// rendered on its own): a server without authentication, where every
// caller may do everything.
const openCaller: Caller = { name: "anonymous", scopes: ["predict", "read", "write", "admin"], anonymous: true, authEnabled: false };

export function staticSession(caller: Caller | null, over: Partial<Session> = {}): Session {
  const nothing = () => {};
  return {
    caller, error: null, loginReason: null, generation: 0,
    can: (scope) => callerCan(caller, scope),
    login: async () => {}, logout: nothing, askLogin: nothing, cancelLogin: nothing, retry: nothing,
    ...over,
  };
}

export const SessionContext = createContext<Session>(staticSession(openCaller));

export function useSession(): Session {
  return useContext(SessionContext);
}

// SessionProvider asks the server who this tab is (with the stored token,
// or a login link's), follows every 401 the API answers, and gives pages
// the caller, its scopes, login and logout.
export function SessionProvider({ children }: { children: ReactNode }) {
  const [caller, setCaller] = useState<Caller | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loginReason, setLoginReason] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);

  // identify asks who the stored token is; a refused token is dropped and
  // the login page says so.
  const identify = useCallback(async () => {
    setError(null);
    try {
      setCaller(await fetchCaller());
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401 && getToken())) {
        setError(e);
        return;
      }
      clearToken();
      setLoginReason(tokenRefused);
      try {
        setCaller(await fetchCaller(null));
      } catch (e2) {
        setError(e2);
      }
    }
  }, []);

  useEffect(() => {
    void identify();
  }, [identify]);

  // A login link opened in this tab changes only the fragment: no reload.
  useEffect(() => {
    const onHash = () => {
      if (!takeTokenFromFragment()) return;
      setLoginReason(null);
      setGeneration((g) => g + 1);
      void identify();
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, [identify]);

  useEffect(() => onUnauthorized((hadToken) => {
    if (hadToken) {
      clearToken();
      setLoginReason(tokenRefused);
      void identify();
    } else {
      setLoginReason(tokenNeeded);
    }
  }), [identify]);

  const login = useCallback(async (token: string) => {
    const c = await fetchCaller(token.trim());
    setToken(token.trim());
    setCaller(c);
    setError(null);
    setLoginReason(null);
    setGeneration((g) => g + 1);
  }, []);

  const logout = useCallback(() => {
    clearToken();
    setCaller(null);
    setLoginReason(null);
    setGeneration((g) => g + 1);
    void identify();
  }, [identify]);

  const value = useMemo<Session>(() => ({
    caller, error, loginReason, generation,
    can: (scope) => callerCan(caller, scope),
    login, logout,
    askLogin: setLoginReason,
    cancelLogin: () => setLoginReason(null),
    retry: () => void identify(),
  }), [caller, error, loginReason, generation, login, logout, identify]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
