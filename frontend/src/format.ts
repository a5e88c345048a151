// Formatting helpers shared by the pages.

export function pct(v: number | undefined, digits = 1): string {
  return v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(digits)}%`;
}

// seconds reads a protobuf Duration as JSON writes it ("12.5s").
export function seconds(d: string | undefined): number {
  if (!d) return 0;
  const v = parseFloat(d.replace(/s$/, ""));
  return Number.isFinite(v) ? v : 0;
}

export function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "–";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function when(ts: string | undefined): string {
  if (!ts) return "–";
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) || d.getTime() <= 0 ? "–" : d.toLocaleString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

// enumLabel shortens an enum value for display: SPLIT_TRAIN -> train.
export function enumLabel(v: string | undefined, prefix: string): string {
  if (!v) return "–";
  return v.startsWith(prefix) ? v.slice(prefix.length).toLowerCase().replace(/_/g, " ") : v;
}
