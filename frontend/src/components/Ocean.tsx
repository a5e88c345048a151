import { useMemo } from "react";

// Ocean is the animated backdrop: rising bubbles and fish swimming across.
// The CSS stops every animation under prefers-reduced-motion.
export function Ocean({ bubbles = 18, fish = 5 }: { bubbles?: number; fish?: number }) {
  const items = useMemo(() => {
    // A fixed pseudo-random sequence, so the scene is the same on every load;
    // negative delays start each animation midway, so the sea is full at once.
    let seed = 7;
    const rnd = () => ((seed = (seed * 9301 + 49297) % 233280) / 233280);
    return {
      bubbles: Array.from({ length: bubbles }, () => ({
        left: rnd() * 100, size: 6 + rnd() * 18, delay: rnd() * 12, duration: 8 + rnd() * 10,
      })),
      fish: Array.from({ length: fish }, (_, i) => ({
        top: 15 + rnd() * 70, delay: rnd() * 20, duration: 22 + rnd() * 18, reverse: i % 2 === 1,
        hue: Math.floor(rnd() * 360), scale: 0.6 + rnd() * 0.8,
      })),
    };
  }, [bubbles, fish]);
  return (
    <div className="ocean" aria-hidden="true" data-testid="ocean">
      {items.bubbles.map((b, i) => (
        <span key={`b${i}`} className="bubble"
          style={{ left: `${b.left}%`, width: b.size, height: b.size, animationDelay: `-${b.delay}s`, animationDuration: `${b.duration}s` }} />
      ))}
      {items.fish.map((f, i) => (
        <svg key={`f${i}`} className={f.reverse ? "fish reverse" : "fish"} viewBox="0 0 64 32"
          style={{ top: `${f.top}%`, animationDelay: `-${f.delay}s`, animationDuration: `${f.duration}s`, transform: `scale(${f.scale})` }}>
          <path d="M4 16c10-12 30-14 44-2l12-8v20l-12-8C34 30 14 28 4 16z" fill={`hsl(${f.hue} 80% 62%)`} />
          <circle cx="14" cy="14" r="2.2" fill="#06283d" />
        </svg>
      ))}
    </div>
  );
}
