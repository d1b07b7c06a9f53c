/**
 * Compressed memory hits against a raw `node:http` server sending the same gzip bytes, and
 * identity memory hits with compression on against compression off (and, with `--baseline
 * <git ref>`, against the gateway as it was at that ref): `wrk` (one thread; Debian package
 * `wrk`, installed with apt-get when missing and run as root), rounds interleaved, medians.
 *
 *   npm run bench:compression -- [--rounds 3] [--seconds 5] [--connections 100] [--baseline main]
 *
 * Contenders, each in its own process (the gateway as `npm start` runs it, embedded simulator):
 * - `raw gzip`: node:http answering the gateway's own gzip bytes of the item from a `Map`;
 * - `gateway gzip`: the gateway's memory hit, `Accept-Encoding: gzip` (hit path);
 * - `raw identity`, `gateway identity (compression on)`, `gateway identity (compression off)`
 *   (`HTTP_COMPRESSION=false`) and `gateway identity (baseline)`: no `Accept-Encoding`.
 *
 * Targets: gzip hits ≥ 60 % of raw; identity hits with compression on not below compression off
 * (nor the baseline) beyond the noise of the run. Writes bench/results/compression.{json,md}.
 */
import { execFileSync, execSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { findFreePort, root, runMain, spawnManaged, startGateway, waitForHttp } from "./harness/processes.js"
import { argNumber, argString, environment, table, writeResult } from "./harness/report.js"

const rounds = argNumber("rounds", 3)
const seconds = argNumber("seconds", 5)
const connections = argNumber("connections", 100)
const baselineRef = argString("baseline", "")

/** Installs `wrk` with apt-get when it is missing (as test/support/prepare.sh installs packages). */
const ensureWrk = () => {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" })
    return
  } catch (error) {
    // wrk --version exits 1 after printing its version: only a missing binary is ENOENT.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return
  }
  if (process.getuid?.() !== 0) throw new Error("wrk is not installed: apt-get install wrk (Debian package wrk)")
  console.error("[bench] installing wrk with apt-get")
  execSync("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk", { stdio: "inherit" })
}

interface WrkResult {
  readonly rps: number
  readonly p50_ms: number
  readonly p99_ms: number
  readonly errors: number
}

const toMs = (value: string): number => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim())
  if (m === null) return NaN
  const n = Number(m[1])
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n
}

/** One wrk run (one thread, `connections`, `seconds`), with `--latency` percentiles. */
const wrk = (url: string, headers: Record<string, string>): Promise<WrkResult> =>
  new Promise((resolve, reject) => {
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"]
    for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`)
    args.push(url)
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
      if (code !== 0 || rps === null) return reject(new Error(`wrk failed (${code}):\n${out}`))
      const p50 = /50%\s+(\S+)/.exec(out)
      const p99 = /99%\s+(\S+)/.exec(out)
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
      const errors = Number(non2xx?.[1] ?? 0) + (socket === null ? 0 : socket.slice(1).reduce((n, x) => n + Number(x), 0))
      resolve({ rps: Number(rps[1]), p50_ms: toMs(p50?.[1] ?? ""), p99_ms: toMs(p99?.[1] ?? ""), errors })
    })
  })

const RAW_SERVER = `
const http = require("node:http")
const identity = Buffer.from(process.env.IDENTITY_B64, "base64")
const gzip = Buffer.from(process.env.GZIP_B64, "base64")
const map = new Map([[process.env.PATHNAME, { identity, gzip }]])
http.createServer((req, res) => {
  const hit = map.get(req.url)
  if (hit === undefined) { res.writeHead(404); res.end(); return }
  const wantsGzip = (req.headers["accept-encoding"] || "").includes("gzip")
  const body = wantsGzip ? hit.gzip : hit.identity
  const headers = { "content-type": "application/json", "content-length": body.length }
  if (wantsGzip) headers["content-encoding"] = "gzip"
  res.writeHead(200, headers)
  res.end(body)
}).listen(Number(process.env.PORT), "127.0.0.1")
`

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** The tree of `ref` extracted to a temporary directory (node_modules linked), for the baseline gateway. */
const checkoutBaseline = (ref: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accel-baseline-"))
  execSync(`git archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`, { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
  fs.symlinkSync(fs.realpathSync(path.join(root, "node_modules")), path.join(dir, "node_modules"))
  return dir
}

const main = async (): Promise<number> => {
  ensureWrk()
  const item = "/content/1"
  // One loopback client: per-client bounds (on builds that have them) are lifted, as the harness does.
  const gatewayEnv = async (extra: Record<string, string>) => ({ SIM_PORT: String(await findFreePort()), CLIENT_LIMITS: "off", ...extra })
  const on = await startGateway({ name: "gateway-compression-on", port: await findFreePort(), env: await gatewayEnv({}) })
  const off = await startGateway({ name: "gateway-compression-off", port: await findFreePort(), env: await gatewayEnv({ HTTP_COMPRESSION: "false" }) })
  let baseline: { readonly url: string } | undefined
  if (baselineRef !== "") {
    const dir = checkoutBaseline(baselineRef)
    const port = await findFreePort()
    const proc = spawnManaged(`gateway-baseline-${Date.now()}`, ["--import", "tsx", path.join(dir, "src/main.ts")], {
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warning",
      ...(await gatewayEnv({}))
    })
    await Promise.race([
      waitForHttp(`http://127.0.0.1:${port}/health/live`, 90_000),
      proc.exited.then(() => {
        throw new Error(`the baseline gateway exited during start:\n${proc.logTail()}`)
      })
    ])
    baseline = { url: `http://127.0.0.1:${port}` }
  }

  // Warm every gateway; the first gzip ask makes the coding (app path), the next is a hit.
  for (const gw of [on, off, ...(baseline === undefined ? [] : [baseline])]) {
    for (let i = 0; i < 3; i++) {
      await (await fetch(gw.url + item, { headers: { "accept-encoding": "identity" } })).arrayBuffer()
      await (await fetch(gw.url + item, { headers: { "accept-encoding": "gzip" } })).arrayBuffer()
    }
  }
  const { request } = await import("undici")
  const rawAnswer = async (url: string, headers: Record<string, string>) => {
    const res = await request(url, { headers })
    return { headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
  }
  const identity = await rawAnswer(on.url + item, {})
  const gzip = await rawAnswer(on.url + item, { "accept-encoding": "gzip" })
  if (gzip.headers["content-encoding"] !== "gzip" || gzip.headers["x-cache"] !== "HIT-MEMORY") {
    throw new Error(`expected a gzip memory hit, got ${gzip.headers["content-encoding"]} ${gzip.headers["x-cache"]}`)
  }
  if (String(gzip.headers["server-timing"]).includes("app;dur")) throw new Error("the gzip hit was not answered by the hit path")

  const rawPort = await findFreePort()
  const raw = spawnManaged(`raw-node-http-${Date.now()}`, ["-e", RAW_SERVER], {
    PORT: String(rawPort),
    IDENTITY_B64: identity.body.toString("base64"),
    GZIP_B64: gzip.body.toString("base64"),
    PATHNAME: item
  })
  const rawUrl = `http://127.0.0.1:${rawPort}`
  await waitForHttp(rawUrl + item)
  void raw

  const GZIP = { "Accept-Encoding": "gzip" }
  const contenders: ReadonlyArray<readonly [string, string, Record<string, string>]> = [
    ["raw gzip", rawUrl + item, GZIP],
    ["gateway gzip", on.url + item, GZIP],
    ["raw identity", rawUrl + item, {}],
    ["gateway identity (compression on)", on.url + item, {}],
    ["gateway identity (compression off)", off.url + item, {}],
    ...(baseline === undefined ? [] : [["gateway identity (baseline)", baseline.url + item, {}] as const])
  ]
  for (const [name, url, headers] of contenders) {
    const res = await fetch(url, { headers })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`${name} answers ${res.status}, not 200`)
  }
  const results: Record<string, Array<WrkResult>> = Object.fromEntries(contenders.map(([name]) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, url, headers] of contenders) {
      const r = await wrk(url, headers)
      results[name]!.push(r)
      console.error(`round ${round + 1} ${name}: ${Math.round(r.rps)} req/s, p99 ${r.p99_ms} ms, errors ${r.errors}`)
    }
  }
  const summary = Object.fromEntries(contenders.map(([name]) => {
    const rs = results[name]!
    return [name, {
      rps: median(rs.map((r) => r.rps)),
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      errors: rs.reduce((n, r) => n + r.errors, 0)
    }]
  }))
  const rps = (name: string) => summary[name]?.rps ?? NaN
  const ratios = {
    gzip_gateway_over_raw: Math.round((rps("gateway gzip") / rps("raw gzip")) * 1000) / 1000,
    identity_gateway_over_raw: Math.round((rps("gateway identity (compression on)") / rps("raw identity")) * 1000) / 1000,
    identity_on_over_off: Math.round((rps("gateway identity (compression on)") / rps("gateway identity (compression off)")) * 1000) / 1000,
    ...(baseline === undefined
      ? {}
      : { identity_on_over_baseline: Math.round((rps("gateway identity (compression on)") / rps("gateway identity (baseline)")) * 1000) / 1000 })
  }
  const env = environment({ wrk: (() => {
    try {
      return execSync("wrk --version 2>&1 || true", { encoding: "utf8" }).split("\n")[0]!.trim()
    } catch {
      return "unknown"
    }
  })() })
  const record = {
    ...env,
    item,
    identity_bytes: identity.body.byteLength,
    gzip_bytes: gzip.body.byteLength,
    connections,
    seconds,
    baseline: baselineRef === "" ? null : baselineRef,
    rounds: results,
    median: summary,
    ratios
  }
  const markdown = [
    `# Compression: memory hits against raw node:http (wrk, ${connections} connections, ${seconds} s, median of ${rounds})`,
    "",
    `${env.date}, commit ${env.commit}, ${env.machine.cpus} × ${env.machine.cpu}, busy machine: ${env.machine.shared}.`,
    `Item \`${item}\`: ${identity.body.byteLength} bytes identity, ${gzip.body.byteLength} bytes gzip.`,
    "",
    table(["contender", "req/s", "p50 ms", "p99 ms", "errors"], contenders.map(([name]) => {
      const s = summary[name]!
      return [name, Math.round(s.rps), s.p50_ms, s.p99_ms, s.errors]
    })),
    "",
    `- gzip memory hits / raw node:http sending the same gzip bytes: **${(ratios.gzip_gateway_over_raw * 100).toFixed(1)} %** (target ≥ 60 %)`,
    `- identity memory hits / raw node:http: ${(ratios.identity_gateway_over_raw * 100).toFixed(1)} %`,
    `- identity memory hits, compression on / off: **${(ratios.identity_on_over_off * 100).toFixed(1)} %** (target: no drop beyond the run's noise)`,
    ...("identity_on_over_baseline" in ratios
      ? [`- identity memory hits, this build / ${baselineRef}: ${((ratios.identity_on_over_baseline as number) * 100).toFixed(1)} %`]
      : []),
    ""
  ].join("\n")
  writeResult("compression", record, markdown)
  console.log(markdown)
  return 0
}

runMain(main)
