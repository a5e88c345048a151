import { useCallback, useState } from "react";
import { Ocean } from "./components/Ocean";
import { Kraken } from "./components/Kraken";
import { navigate, usePath } from "./router";
import { PredictPage } from "./pages/PredictPage";
import { DatasetsPage } from "./pages/DatasetsPage";
import { TrainingPage } from "./pages/TrainingPage";
import { ModelsPage } from "./pages/ModelsPage";

// Clicks on the title that wake the Kraken.
export const krakenClicks = 20;

const pages = [
  { path: "/", name: "Predict", render: () => <PredictPage /> },
  { path: "/datasets", name: "Datasets", render: () => <DatasetsPage /> },
  { path: "/training", name: "Training", render: () => <TrainingPage /> },
  { path: "/models", name: "Models", render: () => <ModelsPage /> },
];

export function App() {
  const path = usePath();
  const [clicks, setClicks] = useState(0);
  const page = pages.find((p) => p.path !== "/" && path.startsWith(p.path)) ?? pages[0];
  const known = path === "/" || page !== pages[0];
  const onTitle = () => setClicks((c) => c + 1);
  const release = useCallback(() => setClicks(0), []);
  return (
    <>
      <Ocean />
      <header className="topbar">
        <h1 onClick={onTitle} title="Shoal" data-testid="title">
          <svg className="logo" viewBox="0 0 64 32" aria-hidden="true"><path d="M4 16c10-12 30-14 44-2l12-8v20l-12-8C34 30 14 28 4 16z" fill="#ffb347" /><circle cx="14" cy="14" r="2.2" fill="#06283d" /></svg> Shoal
        </h1>
        <nav>
          {pages.map((p) => (
            <a key={p.path} href={p.path} className={p === page && known ? "active" : undefined}
              onClick={(e) => { e.preventDefault(); navigate(p.path); }}>
              {p.name}
            </a>
          ))}
        </nav>
      </header>
      <main>
        {known ? page.render() : (
          <section className="card"><h2>Lost at sea</h2><p>No page at {path}. <a href="/" onClick={(e) => { e.preventDefault(); navigate("/"); }}>Back to Predict</a></p></section>
        )}
      </main>
      {clicks >= krakenClicks && <Kraken onDone={release} />}
    </>
  );
}
