import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { takeTokenFromFragment } from "./api/auth";
import { SessionProvider } from "./session";
import "./styles.css";

// A login link (`/#token=…`) leaves the address bar before anything else runs.
takeTokenFromFragment();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <SessionProvider>
      <App />
    </SessionProvider>
  </StrictMode>,
);
