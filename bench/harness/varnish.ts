/**
 * Varnish (Debian `varnishd`) in front of a backend, started and stopped by a bench: its own
 * working directory, foreground (`-F`), killed with its process group when the bench ends.
 *
 * Two configurations:
 * - `default`: the built-in VCL only, which passes every request carrying `Authorization` (and
 *   `Cookie`) to the backend and caches the rest;
 * - `token`: caches requests with a bearer token too, with the exact `Authorization` value in the
 *   hash, so an object is only ever served to a request with the same URL and the same token.
 *   Only GET/HEAD are cached, only 200 answers without `Set-Cookie`, `Cookie` is dropped, the TTL
 *   is short and there is no grace. What it cannot do: a revoked token keeps its copies until the
 *   TTL, and each token holds its own copy of every object (memory grows with callers × objects).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { findFreePort, waitForHttp } from "./processes.js"

export const TOKEN_VCL = (backendPort: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${backendPort}"; }

sub vcl_recv {
  if (req.method != "GET" && req.method != "HEAD") { return (pass); }
  unset req.http.Cookie;
  return (hash);
}

sub vcl_hash {
  hash_data(req.url);
  if (req.http.Authorization) { hash_data(req.http.Authorization); }
  return (lookup);
}

sub vcl_backend_response {
  if (beresp.status != 200 || beresp.http.Set-Cookie) {
    set beresp.uncacheable = true;
    set beresp.ttl = 10s;
    return (deliver);
  }
  set beresp.ttl = 60s;
  set beresp.grace = 0s;
  return (deliver);
}
`

const DEFAULT_VCL = (backendPort: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${backendPort}"; }
`

export const varnishVersion = (): string => {
  const out = spawnSync("varnishd", ["-V"], { encoding: "utf8" })
  return /varnish-(\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? "unknown"
}

const running = new Set<number>()
process.on("exit", () => {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // gone
    }
  }
})

export const startVarnish = async (name: "default" | "token", backendPort: number) => {
  const port = await findFreePort()
  // Outside the bench's private log directory: varnishd's workers run as its own user.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `accel-varnish-${name}-`))
  fs.chmodSync(dir, 0o755)
  const vcl = path.join(dir, "bench.vcl")
  fs.writeFileSync(vcl, name === "default" ? DEFAULT_VCL(backendPort) : TOKEN_VCL(backendPort))
  const log = fs.openSync(path.join(dir, "varnishd.log"), "a")
  const child = spawn("varnishd", ["-F", "-n", path.join(dir, "n"), "-a", `127.0.0.1:${port}`, "-f", vcl, "-s", "malloc,256m"], {
    stdio: ["ignore", log, log],
    detached: true
  })
  fs.closeSync(log)
  running.add(child.pid!)
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/__varnish_probe`, 30_000, () => true)
  return {
    url,
    name,
    stop: async () => {
      running.delete(child.pid!)
      try {
        process.kill(-child.pid!, "SIGTERM")
        await new Promise((r) => child.once("exit", r))
      } catch {
        // gone already
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
