/**
 * The miss path's CPU per request: the gateway answering `/content/{id}` cache misses against a
 * raw undici proxy to the same upstream (a node:http server that sends the same JSON-RPC GET
 * through an undici Pool, parses the reply and answers its `result`). The simulator runs in its
 * own process with the cost model and latency off, so the upstream costs the contenders nothing
 * but its answer. Every request asks a key not asked before (free items, three variants: full
 * HTML, Markdown body, no body), anonymous, `--connections` closed loops; the contender's CPU
 * time (user + system, /proc) over the requests it answered gives µs per request.
 *
 * Contenders: the gateway with its memory tier only, the gateway with Redis and PostgreSQL (a miss
 * also writes both), and the raw proxy; rounds interleaved, each on new keys.
 *
 *   npm run bench:miss-path -- [--requests 2000] [--rounds 3] [--connections 32] [--warmup 3000]
 *
 * Writes bench/results/miss-path.json, .md and .svg; exits 1 when the gateway (memory tier only)
 * needs more than 2× the raw proxy's CPU per request.
 */
import { Pool } from "undici"
import { type PostgresServer, type RedisServer, startPostgres, startRedis } from "../test/support/services.js"
import { cpuMsOf, getJson } from "./harness/probe.js"
import { findFreePort, runMain, spawnManaged, startGateway, startSimulator, waitForHttp } from "./harness/processes.js"
import { argNumber, environment, table, writeResult } from "./harness/report.js"
import { percentile } from "./harness/stats.js"
import { fmt, markdownHeader, percentileChart } from "./harness/suite.js"
import { buildCorpus, type CorpusSettings, simulatorEnv } from "./harness/workload.js"

const requests = argNumber("requests", 2_000)
const rounds = argNumber("rounds", 3)
const connections = argNumber("connections", 32)
// Misses asked of every contender before the measured rounds: a gateway's JIT is still warming
// after a few hundred (300 left its rounds at about 1,200, 900 and 600 µs, in that order).
const warmup = argNumber("warmup", 3_000)
const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }

const PROXY = `
const http = require("node:http")
const { Pool } = require("undici")
const upstream = new Pool(process.env.UPSTREAM, { connections: 64 })
http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://x")
    const m = /^\\/content\\/(\\d+)$/.exec(url.pathname)
    if (m === null) { res.writeHead(404, { "content-length": 0 }); res.end(); return }
    const params = { id: Number(m[1]), include_content: url.searchParams.get("include_content") !== "false", format: url.searchParams.get("format") || "html" }
    const query = encodeURIComponent(JSON.stringify({ jsonrpc: "2.0", method: "content.get_tutorial", params, id: 1 }))
    const reply = await upstream.request({ path: "/jsonrpc?query=" + query, method: "GET", headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} })
    const json = JSON.parse(await reply.body.text())
    const body = Buffer.from(JSON.stringify(json.result))
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length })
    res.end(body)
  } catch (e) {
    res.writeHead(502, { "content-length": 0 }); res.end()
  }
}).listen(Number(process.env.PORT), "127.0.0.1")
`

const CONTENDERS = ["gateway (memory tier)", "gateway (memory + Redis + PostgreSQL)", "raw undici proxy"] as const
type Contender = (typeof CONTENDERS)[number]

const main = async () => {
  const env = environment()
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]) as [RedisServer, PostgresServer]
  const simulator = await startSimulator({ port: await findFreePort(), env: { ...simulatorEnv(corpusSettings), SIM_COST: "off" } })
  const gwMemory = await startGateway({ name: "gateway-memory", port: await findFreePort(), env: { DRUPAL_URL: simulator.url } })
  const gwFull = await startGateway({ name: "gateway-full", port: await findFreePort(), env: { DRUPAL_URL: simulator.url, REDIS_URL: redis.url, DATABASE_URL: postgres.url } })
  const proxyPort = await findFreePort()
  const proxy = spawnManaged("undici-proxy", ["-e", PROXY], { UPSTREAM: simulator.url, PORT: String(proxyPort) })
  const proxyUrl = `http://127.0.0.1:${proxyPort}`
  await waitForHttp(`${proxyUrl}/content/1`)
  const targets: Record<Contender, { url: string; pid: number }> = {
    "gateway (memory tier)": { url: gwMemory.url, pid: gwMemory.proc.child.pid! },
    "gateway (memory + Redis + PostgreSQL)": { url: gwFull.url, pid: gwFull.proc.child.pid! },
    "raw undici proxy": { url: proxyUrl, pid: proxy.child.pid! }
  }

  // Distinct keys: free items × three variants; a slice per round.
  const free = buildCorpus(corpusSettings).items.filter((i) => i.access === "free").map((i) => i.id)
  const variants = ["", "?format=markdown", "?include_content=false"]
  const paths = free.flatMap((id) => variants.map((v) => `/content/${id}${v}`))
  const warmPaths = paths.slice(0, warmup)
  const needed = warmup + rounds * requests
  if (needed > paths.length) throw new Error(`--requests × --rounds needs ${needed} distinct keys, the corpus has ${paths.length}`)

  const drive = async (url: string, list: ReadonlyArray<string>) => {
    const pool = new Pool(url, { connections })
    const lat: Array<number> = []
    const statuses: Record<string, number> = {}
    let next = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: connections }, async () => {
      while (next < list.length) {
        const path = list[next++]!
        const t = performance.now()
        const res = await pool.request({ path, method: "GET", signal: AbortSignal.timeout(30_000) })
        await res.body.dump()
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
        lat.push(performance.now() - t)
      }
    }))
    const seconds = (performance.now() - started) / 1000
    await pool.destroy()
    return { lat, statuses, seconds }
  }

  for (const k of CONTENDERS) await drive(targets[k].url, warmPaths)
  const results: Record<string, Array<{ cpu_us_per_request: number; rps: number; p50_ms: number; p90_ms: number; p99_ms: number; max_ms: number; statuses: Record<string, number>; upstream_calls_per_request: number }>> = {}
  for (let round = 0; round < rounds; round++) {
    const list = paths.slice(warmup + round * requests, warmup + (round + 1) * requests)
    for (const k of CONTENDERS) {
      const sim0 = await getJson(`${simulator.url}/__sim/stats`)
      const cpu0 = cpuMsOf(targets[k].pid)
      const r = await drive(targets[k].url, list)
      const cpu = cpuMsOf(targets[k].pid) - cpu0
      const sim1 = await getJson(`${simulator.url}/__sim/stats`)
      const row = {
        cpu_us_per_request: Math.round((cpu * 1000) / list.length),
        rps: Math.round(list.length / r.seconds),
        p50_ms: Math.round(percentile(r.lat, 50) * 10) / 10,
        p90_ms: Math.round(percentile(r.lat, 90) * 10) / 10,
        p99_ms: Math.round(percentile(r.lat, 99) * 10) / 10,
        max_ms: Math.round(Math.max(...r.lat) * 10) / 10,
        statuses: r.statuses,
        upstream_calls_per_request: Math.round(((sim1.rpc_calls - sim0.rpc_calls) / list.length) * 100) / 100
      }
      ;(results[k] ??= []).push(row)
      console.error(`[bench] round ${round + 1}/${rounds} ${k}: ${row.cpu_us_per_request} µs CPU per request, ${row.rps} req/s, p99 ${row.p99_ms} ms, ${row.upstream_calls_per_request} upstream calls per request, ${JSON.stringify(row.statuses)}`)
    }
  }
  const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const summary = Object.fromEntries(CONTENDERS.map((k) => {
    const rs = results[k]!
    return [k, {
      cpu_us_per_request: median(rs.map((r) => r.cpu_us_per_request)),
      rps: median(rs.map((r) => r.rps)),
      p50_ms: median(rs.map((r) => r.p50_ms)),
      p90_ms: median(rs.map((r) => r.p90_ms)),
      p99_ms: median(rs.map((r) => r.p99_ms)),
      max_ms: median(rs.map((r) => r.max_ms)),
      upstream_calls_per_request: median(rs.map((r) => r.upstream_calls_per_request))
    }]
  })) as Record<Contender, { cpu_us_per_request: number; rps: number; p50_ms: number; p90_ms: number; p99_ms: number; max_ms: number; upstream_calls_per_request: number }>
  const raw = summary["raw undici proxy"].cpu_us_per_request
  const ratio = (k: Contender) => Math.round((summary[k].cpu_us_per_request / raw) * 100) / 100
  const verdicts = [
    { target: "miss-path CPU ≤ 2× a raw undici proxy (gateway, memory tier)", value: `${ratio("gateway (memory tier)")}×`, met: ratio("gateway (memory tier)") <= 2 },
    { target: "the same with Redis and PostgreSQL written on every miss (information)", value: `${ratio("gateway (memory + Redis + PostgreSQL)")}×`, met: ratio("gateway (memory + Redis + PostgreSQL)") <= 2 }
  ]
  const markdown = [
    markdownHeader("miss-path — CPU per cache miss against a raw undici proxy", env,
      `${requests} distinct \`/content/{id}\` misses per contender and round (free items; full HTML, \`?format=markdown\`, \`?include_content=false\`), anonymous, ${connections} closed loops (undici), ${rounds} interleaved rounds after ${warmup} warm-up requests each, medians. Simulator in its own process, cost model and latency off. CPU: the contender process's user + system time (/proc) over its requests; the gateway's includes its own work for the miss (routing, access, the Drupal client, decoding and validating the reply, the cache store, telemetry).`),
    table(["target", "measured", "met"], verdicts.map((v) => [v.target, v.value, v.met ? "yes" : "**no**"])),
    "",
    table(["contender", "CPU µs / request", "× raw proxy", "req/s", "p50 ms", "p99 ms", "upstream calls / request"], CONTENDERS.map((k) => {
      const s = summary[k]
      return [k, fmt(s.cpu_us_per_request), `${ratio(k)}×`, fmt(s.rps), fmt(s.p50_ms, 1), fmt(s.p99_ms, 1), s.upstream_calls_per_request]
    })),
    ""
  ].join("\n")
  const svg = percentileChart(`miss path: latency percentiles (${connections} connections, medians of ${rounds})`, CONTENDERS.map((k) => ({ label: k, ...summary[k] })))
  writeResult("miss-path", { ...env, settings: { requests, rounds, connections }, verdicts, summary, rounds: results }, markdown, svg)
  console.log(markdown)
  return verdicts[0]!.met ? 0 : 1
}

runMain(main)
