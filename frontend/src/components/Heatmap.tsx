// ConfusionHeatmap draws a row-major labels × labels count matrix: rows
// are true labels, columns predictions; each cell's shade is its share of
// the row.
export function ConfusionHeatmap({ labels, counts }: { labels: string[]; counts: number[] }) {
  const n = labels.length;
  if (n === 0 || counts.length !== n * n) return <p className="muted">No confusion matrix.</p>;
  const rowSums = labels.map((_, r) => counts.slice(r * n, r * n + n).reduce((a, b) => a + b, 0));
  return (
    <table className="heatmap" aria-label="confusion matrix">
      <thead>
        <tr><th className="corner">true ↓ / predicted →</th>{labels.map((l) => <th key={l} className="col"><span>{l}</span></th>)}</tr>
      </thead>
      <tbody>
        {labels.map((row, r) => (
          <tr key={row}>
            <th>{row}</th>
            {labels.map((col, c) => {
              const v = counts[r * n + c];
              const share = rowSums[r] ? v / rowSums[r] : 0;
              const color = r === c ? `rgba(46, 204, 160, ${0.15 + share * 0.85})` : `rgba(255, 107, 107, ${share === 0 ? 0 : 0.15 + share * 0.85})`;
              return <td key={col} style={{ background: color }} title={`${row} → ${col}: ${v}`}>{v}</td>;
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
