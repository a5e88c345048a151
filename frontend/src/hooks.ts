import { useCallback, useEffect, useRef, useState } from "react";

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
