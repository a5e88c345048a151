// What the live tests run against: a real `shoal serve` (auth on, free
// ports, its own folder), the `shoal` CLI against it, and a TCP proxy that
// can cut every connection through it.
//
// The binary is $SHOAL_BIN, else the repository's bin/shoal; ONNX Runtime is
// $ONNXRUNTIME_SHARED_LIBRARY_PATH. scripts/test-typescript.sh sets both.
import { spawn, execFile } from "node:child_process";
import { accessSync, constants, mkdirSync, openSync, readFileSync, closeSync } from "node:fs";
import net from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export function shoalBinary() {
  const path = process.env.SHOAL_BIN || join(repo, "bin", "shoal");
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`no shoal binary at ${path}: build it (go build -o bin/shoal ./cmd/shoal) or run scripts/test-typescript.sh`);
  }
  if (!process.env.ONNXRUNTIME_SHARED_LIBRARY_PATH) {
    throw new Error("ONNXRUNTIME_SHARED_LIBRARY_PATH is not set: export it from scripts/setup-onnxruntime.sh, or run scripts/test-typescript.sh");
  }
  return path;
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Server is `shoal serve` with auth on, run in folder (its ./data there).
export class Server {
  static async start(folder, ...args) {
    const s = new Server();
    s.folder = folder;
    s.grpc = `127.0.0.1:${await freePort()}`;
    s.http = `127.0.0.1:${await freePort()}`;
    s.url = `http://${s.http}`;
    mkdirSync(folder, { recursive: true });
    const log = openSync(join(folder, "serve.log"), "w");
    s.proc = spawn(shoalBinary(), ["serve", `--grpc.listen-address=${s.grpc}`, `--http.listen-address=${s.http}`,
      "--server.shutdown-delay=0", ...args], { cwd: folder, stdio: ["ignore", log, log] });
    closeSync(log);
    s.exited = new Promise((ok) => s.proc.on("exit", (code, signal) => ok(code ?? signal)));
    try {
      await s.#waitReady(60_000);
    } catch (err) {
      await s.stop();
      throw err;
    }
    s.adminToken = readFileSync(join(folder, "data", "admin-token"), "utf8").trim();
    return s;
  }

  // Readiness is a condition to poll: /readyz answers 200 once every
  // service is up.
  async #waitReady(bound) {
    const end = Date.now() + bound;
    let exited = null;
    this.exited.then((c) => (exited = c));
    while (Date.now() < end) {
      if (exited !== null) throw new Error(`shoal serve exited with ${exited}:\n${this.logTail()}`);
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`shoal serve not ready within ${bound / 1000}s:\n${this.logTail()}`);
  }

  logTail(lines = 30) {
    try {
      return readFileSync(join(this.folder, "serve.log"), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  // cli runs a `shoal` client command against this server and returns its
  // stdout.
  async cli(args, token = this.adminToken) {
    const env = { ...process.env, SHOAL_ADDR: this.grpc, SHOAL_TOKEN: token };
    try {
      const { stdout } = await promisify(execFile)(shoalBinary(), args, { cwd: this.folder, env, maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      throw new Error(`shoal ${args.join(" ")}: ${err.stderr || err.message}`);
    }
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

// CuttingProxy forwards TCP connections to target ("host:port"); cut()
// drops every open one, as a network failure or a load balancer's restart
// would.
export class CuttingProxy {
  static async start(target) {
    const p = new CuttingProxy();
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    p.open = new Set();
    p.connections = 0;
    p.server = net.createServer((client) => {
      p.connections++;
      const upstream = net.connect(port, host);
      for (const s of [client, upstream]) {
        p.open.add(s);
        s.on("close", () => p.open.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise((ok) => p.server.listen(0, "127.0.0.1", ok));
    p.url = `http://127.0.0.1:${p.server.address().port}`;
    return p;
  }

  cut() {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }

  async close() {
    this.cut();
    await new Promise((ok) => this.server.close(ok));
  }
}
