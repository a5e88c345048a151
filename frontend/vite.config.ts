/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development (`npm run dev`) Vite serves the console and proxies the
// API to a running `shoal serve` (SHOAL_API, default http://localhost:8080).
// The production build goes where the Go binary embeds it.
const api = process.env.SHOAL_API ?? "http://localhost:8080";
const proxied = ["/v1", "/v2", "/predict", "/healthz", "/readyz", "/metrics"];

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../internal/webui/dist/app",
    emptyOutDir: true,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: true }])),
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
    // uploadImages' test base64-encodes 20 MiB: 28 s on two loaded cores.
    testTimeout: 60_000,
    restoreMocks: true,
  },
});
