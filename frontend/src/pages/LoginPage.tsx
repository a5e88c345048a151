import { useState } from "react";
import { ApiError } from "../api/errors";
import { ErrorBanner } from "../components/ErrorBanner";
import { navigate } from "../router";
import { useSession } from "../session";

// LoginPage asks for a token, checks it with the server (GetCaller) and
// keeps it for this tab.
export function LoginPage({ reason }: { reason: string }) {
  const session = useSession();
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await session.login(token);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401
        ? new Error("The server does not know this token: it is mistyped, revoked or expired.")
        : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="page login">
      <form className="card" onSubmit={submit} data-testid="login">
        <h2>Log in</h2>
        <p data-testid="login-reason">{reason}</p>
        <div className="row">
          <input type="password" value={token} onChange={(e) => setToken(e.target.value)} placeholder="paste a token"
            aria-label="token" autoComplete="off" spellCheck={false} autoFocus data-testid="login-token" />
          <button type="submit" disabled={!token.trim() || busy}>Log in</button>
        </div>
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
        <h3>Where to get a token</h3>
        <ul className="muted">
          <li>On the server's machine: its first start wrote an admin token to <code>./data/admin-token</code>, in the
            folder the server runs in (<code>make run</code> prints a login link with it).</li>
          <li>From an admin, or with the admin token on the command line, one for you:{" "}
            <code>shoal tokens create --name alice --scope read,write</code> (scopes: predict, read, write, admin).</li>
        </ul>
        <p className="muted">The token stays in this browser tab (its session storage) and goes only to this server, until
          you log out or close the tab.</p>
        {session.can("predict") && (
          <p><a href="/" onClick={(e) => { e.preventDefault(); session.cancelLogin(); navigate("/"); }}>Predict without a token</a></p>
        )}
      </form>
    </section>
  );
}
