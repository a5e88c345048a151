/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development (`npm run dev`) Vite serves the console and proxies the
// API to a running `shoal serve` (SHOAL_API, default http://localhost:8080).
// The production build goes where the Go binary embeds it.
const api = process.env.SHOAL_API ?? "http://localhost:8080";
const proxied = ["/v1", "/v2", "/predict", "/openapi.json", "/healthz", "/readyz", "/metrics"];

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../internal/webui/dist/app",
    emptyOutDir: true,
    // The one chunk past Vite's 500 kB warning is Swagger UI's (about
    // 1.5 MB, 400 kB gzipped), which only the API page fetches.
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: true }])),
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
    setupFiles: ["src/test-setup.ts"],
    // Swagger UI's package picks its build by condition: Node's carries a
    // second copy of React, which React refuses. The tests take the
    // browser's, as the console does.
    server: { deps: { inline: ["swagger-ui-react"] } },
    alias: { "#swagger-ui": fileURLToPath(new URL("node_modules/swagger-ui-react/swagger-ui-es-bundle-core.js", import.meta.url)) },
    // Bounds on a hang, not waits: a test ends as soon as what it waits for
    // happens. CI's 2 cores are often shared with builds; jsdom is slow
    // there, and the defaults (5 s a test, 1 s for waitFor) failed tests
    // that pass in well under a second on an idle machine.
    testTimeout: 60_000,
    // Two test files at a time, on 2 cores: more only contend.
    maxWorkers: 2,
  },
});
