import { Fragment, useCallback, useEffect, useRef, useState } from "react";
import { Ocean } from "./components/Ocean";
import { Kraken } from "./components/Kraken";
import { navigate, usePath } from "./router";
import { PredictPage } from "./pages/PredictPage";
import { DatasetsPage } from "./pages/DatasetsPage";
import { TrainingPage } from "./pages/TrainingPage";
import { ModelsPage } from "./pages/ModelsPage";
import { LoginPage } from "./pages/LoginPage";
import { ApiPage } from "./pages/ApiPage";
import { ErrorBanner } from "./components/ErrorBanner";
import { useSession } from "./session";
import type { Scope } from "./api/auth";

// Clicks on the title that wake the Kraken.
export const krakenClicks = 20;

// Each page needs a scope to show at all (the API reference none: the
// server describes its API to anyone); within a page, what changes things
// (upload, train, promote, delete) shows only to tokens that may.
const pages: { path: string; name: string; scope: Scope | null; render: () => React.ReactNode }[] = [
  { path: "/", name: "Predict", scope: "predict", render: () => <PredictPage /> },
  { path: "/datasets", name: "Datasets", scope: "read", render: () => <DatasetsPage /> },
  { path: "/training", name: "Training", scope: "read", render: () => <TrainingPage /> },
  { path: "/models", name: "Models", scope: "read", render: () => <ModelsPage /> },
  { path: "/api", name: "API", scope: null, render: () => <ApiPage /> },
];

// What each scope lets a token do, as the caller badge explains it.
const scopeMeaning: Record<Scope, string> = {
  predict: "classify images",
  read: "browse datasets, jobs and models",
  write: "upload images, take snapshots, train, promote versions",
  admin: "delete, manage tokens",
};

export function App() {
  const path = usePath();
  const [clicks, setClicks] = useState(0);
  const page = pages.find((p) => p.path !== "/" && path.startsWith(p.path)) ?? pages[0];
  const known = path === "/" || page !== pages[0];
  const onTitle = () => setClicks((c) => c + 1);
  const release = useCallback(() => setClicks(0), []);
  const session = useSession();
  // Going to another page leaves a login asked for by a refused call: the
  // new page asks again if it needs to.
  const shownPath = useRef(path);
  const { cancelLogin } = session;
  useEffect(() => {
    if (shownPath.current !== path) cancelLogin();
    shownPath.current = path;
  }, [path, cancelLogin]);
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
        <CallerBadge />
      </header>
      <main>
        {known ? <Gate name={page.name} scope={page.scope}>{page.render()}</Gate> : (
          <section className="card"><h2>Lost at sea</h2><p>No page at {path}. <a href="/" onClick={(e) => { e.preventDefault(); navigate("/"); }}>Back to Predict</a></p></section>
        )}
      </main>
      {clicks >= krakenClicks && <Kraken onDone={release} />}
    </>
  );
}

// Gate shows a page once the server has said who this tab is, and only to
// a caller with the page's scope: an anonymous one gets the login page, a
// token without the scope is told so.
function Gate({ name, scope, children }: { name: string; scope: Scope | null; children: React.ReactNode }) {
  const session = useSession();
  const { caller } = session;
  if (!caller) {
    return session.error ? (
      <section className="card">
        <h2>No answer from the deep</h2>
        <ErrorBanner error={session.error} />
        <button type="button" onClick={session.retry}>Try again</button>
      </section>
    ) : <p className="muted">Surfacing…</p>;
  }
  if (session.loginReason) return <LoginPage reason={session.loginReason} />;
  if (scope && !session.can(scope)) {
    if (caller.anonymous) return <LoginPage reason={`The ${name} page needs a token with the ${scope} scope.`} />;
    return (
      <section className="card" data-testid="not-allowed">
        <h2>Not for this token</h2>
        <p>The {name} page needs the {scope} scope; the token <strong>{caller.name}</strong> has{" "}
          {caller.scopes.length ? caller.scopes.join(", ") : "no scope"}.</p>
        <button type="button" onClick={() => session.askLogin(`Log in with a token that has the ${scope} scope.`)}>Log in with another token</button>
      </section>
    );
  }
  // A login or logout mounts the page anew, so it loads with the new token.
  return <Fragment key={session.generation}>{children}</Fragment>;
}

// CallerBadge says who this tab runs as and what its scopes allow, with
// the login or logout button.
function CallerBadge() {
  const session = useSession();
  const { caller } = session;
  if (!caller) return null;
  if (!caller.authEnabled) return <div className="caller muted" data-testid="caller">authentication off</div>;
  return (
    <div className="caller" data-testid="caller">
      <span className="who" data-testid="caller-name">{caller.anonymous ? "not logged in" : caller.name}</span>
      <span className="scopes" aria-label="scopes">
        {caller.scopes.map((s) => <span key={s} className="scope" title={`${s}: ${scopeMeaning[s]}`}>{s}</span>)}
        {caller.scopes.length === 0 && <span className="muted">no access</span>}
      </span>
      {caller.anonymous
        ? <button type="button" onClick={() => session.askLogin("Log in with a token to see and change more.")} data-testid="login-button">Log in</button>
        : <button type="button" onClick={session.logout} data-testid="logout">Log out</button>}
    </div>
  );
}
