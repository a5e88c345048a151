import { useEffect } from "react";

// Kraken rises from the deep when the title has been clicked enough times;
// it sinks again on a click or after a few seconds.
export function Kraken({ onDone }: { onDone: () => void }) {
  useEffect(() => {
    const t = window.setTimeout(onDone, 6000);
    return () => window.clearTimeout(t);
  }, [onDone]);
  return (
    <div className="kraken" role="dialog" aria-label="The Kraken" onClick={onDone} data-testid="kraken">
      <svg viewBox="0 0 200 200" width="320" height="320">
        <ellipse cx="100" cy="70" rx="48" ry="56" fill="#7b2d8b" />
        <circle cx="82" cy="66" r="10" fill="#fff" /><circle cx="118" cy="66" r="10" fill="#fff" />
        <circle cx="84" cy="68" r="5" fill="#111" /><circle cx="116" cy="68" r="5" fill="#111" />
        {[0, 1, 2, 3, 4, 5, 6, 7].map((i) => (
          <path key={i} className="tentacle" style={{ animationDelay: `${i * 0.15}s` }}
            d={`M${60 + i * 11} 115 q ${i % 2 ? 18 : -18} 35 ${i % 2 ? -6 : 6} 75`}
            stroke="#7b2d8b" strokeWidth="9" fill="none" strokeLinecap="round" />
        ))}
      </svg>
      <p>RELEASE THE KRAKEN!</p>
    </div>
  );
}
