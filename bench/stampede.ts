/**
 * Stampede: `--requests` (1,000) concurrent requests for one cold key, sent to one gateway and
 * spread over three gateways sharing Redis and PostgreSQL; the simulator's per-method counters
 * say how many upstream calls they cost (target: 1 in both cases). Three rounds per case, each on
 * a new key, for an item (`/content/{id}`) and a search; the Markdown route (streamed, never
 * shared by design) is shown for information.
 *
 *   npm run bench:stampede -- [--requests 1000] [--rounds 3]
 *
 * Writes bench/results/stampede.json, .md and .svg; exits 1 when a JSON key reached the origin
 * more than once.
 */
import { Pool } from "undici"
import { runMain } from "./harness/processes.js"
import { argNumber, environment, table, writeResult } from "./harness/report.js"
import { startStack } from "./harness/stack.js"
import { percentile } from "./harness/stats.js"
import { fmt, markdownHeader, percentileChart } from "./harness/suite.js"
import { buildCorpus, type CorpusSettings } from "./harness/workload.js"

const requests = argNumber("requests", 1_000)
const rounds = argNumber("rounds", 3)
const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }
const SIM_ENV = { SIM_LATENCY: "lognormal", SIM_LATENCY_MEAN_MS: "80", SIM_LATENCY_P99_MS: "250" }

const KINDS = [
  { kind: "content", method: "content.get_tutorial", path: (id: number, _round: string) => `/content/${id}` },
  { kind: "search", method: "content.search", path: (_id: number, round: string) => `/search?q=${encodeURIComponent(`stampede ${round}`)}&limit=10` },
  { kind: "markdown", method: "content.get_tutorial", path: (id: number, _round: string) => `/content/${id}/markdown` }
] as const

const main = async () => {
  const env = environment()
  const stack = await startStack({ corpus: corpusSettings, simulatorEnv: SIM_ENV, gatewayEnv: {} })
  const gateways = await Promise.all(["gateway-a", "gateway-b", "gateway-c"].map((n) => stack.addGateway(n)))
  const pools = gateways.map((g) => new Pool(g.url, { connections: requests }))
  const free = buildCorpus(corpusSettings).items.filter((i) => i.access === "free" && !i.large).map((i) => i.id)
  let nextId = 0
  // JIT warm-up of each gateway on keys outside the measured ones.
  for (const pool of pools) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => pool.request({ path: `/content/${free[free.length - 1 - i]}`, method: "GET" }).then((r) => r.body.dump())))
  }
  const cases: Array<{ instances: number; kind: string; round: number; path: string; upstream_calls: number; statuses: Record<string, number>; p50_ms: number; p99_ms: number; max_ms: number }> = []
  for (const instances of [1, 3]) {
    for (const k of KINDS) {
      for (let round = 1; round <= rounds; round++) {
        const path = k.path(free[nextId++]!, `${instances} ${round} ${Date.now()}`)
        const before = await stack.simStats()
        const statuses: Record<string, number> = {}
        const lat: Array<number> = []
        await Promise.all(Array.from({ length: requests }, async (_, i) => {
          const t = performance.now()
          try {
            const res = await pools[i % instances]!.request({ path, method: "GET", signal: AbortSignal.timeout(60_000) })
            await res.body.dump()
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
          } catch {
            statuses.error = (statuses.error ?? 0) + 1
          }
          lat.push(performance.now() - t)
        }))
        const after = await stack.simStats()
        const calls = (after.methods?.[k.method] ?? 0) - (before.methods?.[k.method] ?? 0)
        const c = { instances, kind: k.kind, round, path, upstream_calls: calls, statuses, p50_ms: Math.round(percentile(lat, 50)), p99_ms: Math.round(percentile(lat, 99)), max_ms: Math.round(Math.max(...lat)) }
        cases.push(c)
        console.error(`[bench] ${instances} instance(s), ${k.kind} round ${round}: ${calls} upstream call(s), statuses ${JSON.stringify(statuses)}, p99 ${c.p99_ms} ms`)
      }
    }
  }
  await Promise.all(pools.map((p) => p.destroy()))
  const json = cases.filter((c) => c.kind !== "markdown")
  const verdicts = [1, 3].map((n) => {
    const worst = Math.max(...json.filter((c) => c.instances === n).map((c) => c.upstream_calls))
    return { target: `${requests} concurrent requests for one cold key, ${n} instance(s): 1 upstream call`, value: `at most ${worst}`, met: worst === 1 }
  })
  const markdown = [
    markdownHeader("stampede — one cold key, many concurrent requests", env,
      `${requests} concurrent requests (anonymous) for one cold key, all sent at once to one gateway or round-robin over three gateways sharing Redis and PostgreSQL (default settings: lease \`CACHE_LEASE_MS\` on); simulator in its own process (cost model on, log-normal latency mean 80 ms / p99 250 ms). Upstream calls from the simulator's per-method counters. ${rounds} rounds per case, a new key each.`),
    table(["target", "measured", "met"], verdicts.map((v) => [v.target, v.value, v.met ? "yes" : "**no**"])),
    "",
    table(["instances", "route", "round", "upstream calls", "statuses", "p50 ms", "p99 ms", "max ms"], cases.map((c) => [c.instances, c.kind, c.round, c.upstream_calls, JSON.stringify(c.statuses), fmt(c.p50_ms), fmt(c.p99_ms), fmt(c.max_ms)])),
    "",
    "The Markdown route streams its document from Drupal and never shares an upstream stream (README, \"HTTP API\"), so its rows are information, not a target.",
    ""
  ].join("\n")
  const svg = percentileChart(`stampede: latency of ${requests} concurrent requests for one cold key`, cases.filter((c) => c.round === 1).map((c) => ({ label: `${c.instances}× ${c.kind}`, p50_ms: c.p50_ms, p90_ms: null, p99_ms: c.p99_ms, max_ms: c.max_ms })))
  writeResult("stampede", { ...env, settings: { requests, rounds, simulator: SIM_ENV }, verdicts, cases }, markdown, svg)
  console.log(markdown)
  return verdicts.every((v) => v.met) ? 0 : 1
}

runMain(main)
