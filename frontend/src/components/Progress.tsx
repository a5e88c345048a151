// Progress is a labelled progress bar; fraction is clamped to [0, 1].
export function Progress({ fraction, label }: { fraction: number; label?: string }) {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const pct = Math.round(f * 100);
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label={label}>
      <div className="progress-fill" style={{ width: `${pct}%` }} />
      <span className="progress-text">{label ? `${label} · ` : ""}{pct}%</span>
    </div>
  );
}
