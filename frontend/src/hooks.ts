import { useCallback, useEffect, useRef, useState } from "react";
import { authFetch, getToken } from "./api/auth";

// useLoad runs load when deps change (and on reload()), keeping the last
// data, the error of the last attempt, and whether one is in flight.
// Answers of superseded attempts are dropped.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const attempt = useRef(0);
  const run = useCallback(load, deps);
  const reload = useCallback(async () => {
    const mine = ++attempt.current;
    setLoading(true);
    try {
      const d = await run();
      if (mine === attempt.current) {
        setData(d);
        setError(null);
      }
    } catch (e) {
      if (mine === attempt.current) setError(e);
    } finally {
      if (mine === attempt.current) setLoading(false);
    }
  }, [run]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading, reload, setError };
}

// useImageSource returns what an <img> shows for url, an API path: with a
// token, a blob: URL of the bytes fetched with it (an <img> cannot send an
// Authorization header, and the Content-Security-Policy allows blob:
// images); without one, url itself. undefined while the bytes are on their
// way or when they could not be had. The blob URL is released when url
// changes or the component goes.
export function useImageSource(url: string | undefined): string | undefined {
  const token = getToken();
  const [src, setSrc] = useState<string | undefined>(token ? undefined : url);
  useEffect(() => {
    if (!url || !token) {
      setSrc(url);
      return;
    }
    setSrc(undefined);
    const abort = new AbortController();
    let blobUrl: string | undefined;
    authFetch(url, { signal: abort.signal })
      .then(async (r) => {
        if (!r.ok) return;
        const blob = await r.blob();
        if (abort.signal.aborted) return;
        blobUrl = URL.createObjectURL(blob);
        setSrc(blobUrl);
      })
      .catch(() => {}); // a missing picture stays empty; the page goes on
    return () => {
      abort.abort();
      if (blobUrl) URL.revokeObjectURL(blobUrl);
    };
  }, [url, token]);
  return src;
}
