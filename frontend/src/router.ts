import { useEffect, useState } from "react";

// A few pages need no router library: the path is the page, history
// pushState changes it, and the server answers index.html for any of them.
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  return path;
}

export function navigate(to: string): void {
  if (to === window.location.pathname + window.location.search) return;
  window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useQuery(name: string): string | null {
  usePath();
  return new URLSearchParams(window.location.search).get(name);
}
