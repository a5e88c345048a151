// Bars are labelled horizontal bars of values in [0, 1], shown as percents.
export function Bars({ items }: { items: { label: string; value: number }[] }) {
  return (
    <ul className="bars">
      {items.map((it, i) => (
        <li key={it.label} className={i === 0 ? "top" : undefined}>
          <span className="bar-label">{it.label}</span>
          <span className="bar-track"><span className="bar-fill" style={{ width: `${Math.max(0, Math.min(1, it.value)) * 100}%` }} /></span>
          <span className="bar-value">{(it.value * 100).toFixed(1)}%</span>
        </li>
      ))}
    </ul>
  );
}
