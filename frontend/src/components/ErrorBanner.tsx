import { describe } from "../api/errors";

// ErrorBanner shows a failed call as a readable message.
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error === null || error === undefined) return null;
  return (
    <div className="error" role="alert">
      <span>{describe(error)}</span>
      {onDismiss && <button type="button" className="link" onClick={onDismiss} aria-label="dismiss">×</button>}
    </div>
  );
}
