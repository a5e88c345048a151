// LineChart draws series over x = 1..n as plain SVG.
export type Series = { name: string; color: string; values: (number | undefined)[] };

export function LineChart({ title, series, yMax, format = (v) => v.toFixed(2) }: {
  title: string; series: Series[]; yMax?: number; format?: (v: number) => string;
}) {
  const w = 360, h = 180, pad = { l: 44, r: 10, t: 10, b: 26 };
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const top = yMax ?? (all.length ? Math.max(...all) * 1.1 || 1 : 1);
  const x = (i: number) => pad.l + (n === 1 ? (w - pad.l - pad.r) / 2 : (i / (n - 1)) * (w - pad.l - pad.r));
  const y = (v: number) => pad.t + (1 - v / top) * (h - pad.t - pad.b);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={title}>
        <line x1={pad.l} y1={h - pad.b} x2={w - pad.r} y2={h - pad.b} className="axis" />
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={h - pad.b} className="axis" />
        {[0, 0.5, 1].map((f) => (
          <text key={f} x={pad.l - 4} y={y(top * f) + 4} textAnchor="end" className="tick">{format(top * f)}</text>
        ))}
        {Array.from({ length: n }, (_, i) => (
          <text key={i} x={x(i)} y={h - 8} textAnchor="middle" className="tick">{i + 1}</text>
        ))}
        {series.map((s) => {
          const pts = s.values.map((v, i) => (v === undefined ? null : [x(i), y(v)] as const)).filter((p) => p !== null);
          return (
            <g key={s.name} data-series={s.name} data-points={pts.length}>
              <polyline points={pts.map((p) => p.join(",")).join(" ")} fill="none" stroke={s.color} strokeWidth={2} />
              {pts.map((p, i) => <circle key={i} cx={p[0]} cy={p[1]} r={3} fill={s.color} />)}
            </g>
          );
        })}
      </svg>
      <div className="legend">
        {series.map((s) => <span key={s.name}><i style={{ background: s.color }} />{s.name}</span>)}
      </div>
    </figure>
  );
}
