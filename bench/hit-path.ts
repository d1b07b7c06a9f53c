/**
 * Memory hits of the gateway against a raw `node:http` server answering the same bytes from a
 * `Map`: interleaved rounds with autocannon, medians and the ratio. The gateway runs as
 * `npm start` runs it (its own process, embedded simulator); the raw server in another process.
 *
 *   npx tsx bench/hit-path.ts [--rounds 3] [--seconds 5] [--connections 100]
 *
 * Writes bench/results/hit-path.json and prints a Markdown table.
 */
import autocannon from "autocannon"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { findFreePort } from "../test/support/services.js"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const rounds = arg("rounds", 3)
const seconds = arg("seconds", 5)
const connections = arg("connections", 100)
const root = new URL("..", import.meta.url).pathname

const waitFor = async (url: string, deadlineMs = 30_000) => {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    try {
      const res = await fetch(url)
      if (res.status < 500) return res
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const RAW_SERVER = `
const http = require("node:http")
const body = Buffer.from(process.env.BODY_B64, "base64")
const map = new Map([[process.env.PATHNAME, body]])
http.createServer((req, res) => {
  const hit = map.get(req.url)
  if (hit === undefined) { res.writeHead(404); res.end(); return }
  res.writeHead(200, { "content-type": "application/json", "content-length": hit.length })
  res.end(hit)
}).listen(Number(process.env.PORT), "127.0.0.1")
`

const run = (url: string) =>
  new Promise<autocannon.Result>((resolve, reject) =>
    autocannon({ url, connections, duration: seconds }, (err: unknown, result: autocannon.Result) => (err ? reject(err) : resolve(result)))
  )

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const children: Array<ChildProcess> = []
  try {
    const port = await findFreePort()
    const simPort = await findFreePort()
    children.push(spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: { ...process.env, PORT: String(port), SIM_PORT: String(simPort), LOG_LEVEL: "warning", HOST: "127.0.0.1" },
      stdio: "ignore"
    }))
    await waitFor(`http://127.0.0.1:${port}/health/live`)
    const path = "/content/1?include_content=false"
    const warm = await waitFor(`http://127.0.0.1:${port}${path}`)
    const body = Buffer.from(await warm.arrayBuffer())
    const check = await fetch(`http://127.0.0.1:${port}${path}`)
    if (check.headers.get("x-cache") !== "HIT-MEMORY") throw new Error(`expected a memory hit, got ${check.headers.get("x-cache")}`)

    const rawPort = await findFreePort()
    children.push(spawn(process.execPath, ["-e", RAW_SERVER], {
      env: { ...process.env, PORT: String(rawPort), BODY_B64: body.toString("base64"), PATHNAME: path },
      stdio: "ignore"
    }))
    await waitFor(`http://127.0.0.1:${rawPort}${path}`)

    const results: Record<"raw" | "gateway", Array<{ rps: number; p50: number; p99: number; errors: number; non2xx: number }>> = { raw: [], gateway: [] }
    for (let round = 0; round < rounds; round++) {
      for (const [name, url] of [["raw", `http://127.0.0.1:${rawPort}${path}`], ["gateway", `http://127.0.0.1:${port}${path}`]] as const) {
        const r = await run(url)
        results[name].push({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx })
        console.error(`round ${round + 1} ${name}: ${Math.round(r.requests.average)} req/s, p99 ${r.latency.p99} ms`)
      }
    }
    const summary = Object.fromEntries((["raw", "gateway"] as const).map((name) => [name, {
      rps: median(results[name].map((r) => r.rps)),
      p50_ms: median(results[name].map((r) => r.p50)),
      p99_ms: median(results[name].map((r) => r.p99)),
      errors: results[name].reduce((n, r) => n + r.errors + r.non2xx, 0)
    }]))
    const ratio = summary.gateway!.rps / summary.raw!.rps
    const pkg = (name: string) => JSON.parse(readFileSync(`${root}node_modules/${name}/package.json`, "utf8")).version as string
    const record = {
      date: new Date().toISOString(),
      command: `npx tsx bench/hit-path.ts --rounds ${rounds} --seconds ${seconds} --connections ${connections}`,
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      versions: { effect: pkg("effect"), "@effect/platform": pkg("@effect/platform"), "@effect/platform-node": pkg("@effect/platform-node"), autocannon: pkg("autocannon") },
      body_bytes: body.length,
      rounds: results,
      median: summary,
      gateway_over_raw: Math.round(ratio * 1000) / 1000
    }
    writeFileSync(`${root}bench/results/hit-path.json`, JSON.stringify(record, null, 2) + "\n")
    console.log(`| server | req/s (median of ${rounds}) | p50 ms | p99 ms | errors |\n| --- | --- | --- | --- | --- |`)
    for (const name of ["raw", "gateway"] as const) {
      const s = summary[name]!
      console.log(`| ${name} | ${Math.round(s.rps)} | ${s.p50_ms} | ${s.p99_ms} | ${s.errors} |`)
    }
    console.log(`\ngateway memory hits / raw node:http: ${(ratio * 100).toFixed(1)} %`)
  } finally {
    for (const child of children) child.kill("SIGTERM")
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
