/**
 * `tools/call content.search` through `/mcp` at 100 concurrent clients: the simulator (its own
 * process, log-normal upstream latency 80/250 ms as the realistic mix has it) and the gateway (its
 * own process), then a closed loop of MCP clients, each sending its next call when the previous
 * one answered. Questions are Zipf-distributed over the corpus' topics and callers mixed
 * (anonymous, free, subscriber), as in the realistic mix; half the clients speak 2026-07-28, half
 * the legacy revision. Every answer is checked (a result, not an error; only items the caller may
 * read). A short warm-up runs first, unmeasured.
 *
 *   npm run bench:mcp -- [--seconds 15] [--connections 100] [--warmup 3]
 *
 * Writes bench/results/mcp.json and .md; exits 1 when a target is missed or an answer is wrong.
 */
import { Pool } from "undici"
import { argNumber, environment, table, writeResult } from "./harness/report.js"
import { findFreePort, runMain, startGateway, startSimulator } from "./harness/processes.js"
import { percentile } from "./harness/stats.js"
import { buildCorpus, CALLERS, checkAnswer, makeWorkload, simulatorEnv } from "./harness/workload.js"

const seconds = argNumber("seconds", 15)
const connections = argNumber("connections", 100)
const warmup = argNumber("warmup", 3)

/** The targets the run is judged by: the gateway's SLO defaults (`SLO_*`). */
const TARGETS = { p95Ms: 500, p99Ms: 1000, errorRate: 0.01 }

const corpusSettings = { size: 2000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }

const modernHeaders = (name: string) => ({
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": "tools/call",
  "mcp-name": name
})
const envelope = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} }

interface Sample {
  readonly ms: number
  readonly ok: boolean
  readonly violation?: string
}

const main = async (): Promise<number> => {
  const corpus = buildCorpus(corpusSettings)
  const workload = makeWorkload(corpus, { ids: corpus.size, questions: 200 })
  const simulator = await startSimulator({
    port: await findFreePort(),
    env: { ...simulatorEnv(corpusSettings), SIM_LATENCY: "lognormal", SIM_LATENCY_MEAN_MS: "80", SIM_LATENCY_P99_MS: "250" }
  })
  const gateway = await startGateway({ name: "gateway", port: await findFreePort(), env: { DRUPAL_URL: simulator.url } })
  const pool = new Pool(gateway.url, { connections, pipelining: 1, keepAliveTimeout: 4_000 })
  console.log(`[bench] simulator ${simulator.url}, gateway ${gateway.url}; ${connections} clients, ${warmup} s warm-up, ${seconds} s measured`)

  const samples: Array<Sample> = []
  let measuring = false
  let stopAt = 0
  let nextId = 0
  const client = async (i: number) => {
    const modern = i % 2 === 0
    while (Date.now() < stopAt) {
      let request = workload.next()
      while (request.kind !== "search") request = workload.next()
      const caller = CALLERS[i % CALLERS.length]!
      const query = new URL(request.path, "http://x").searchParams.get("q")!
      const id = nextId++
      const params = { name: "content.search", arguments: { query, page: { limit: 10 } } }
      const body = JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: modern ? { ...params, _meta: envelope } : params })
      const started = performance.now()
      let ok = false
      let violation: string | undefined
      try {
        const res = await pool.request({
          path: "/mcp",
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            ...(modern ? modernHeaders("content.search") : { "mcp-protocol-version": "2025-11-25" }),
            ...(caller.authorization === undefined ? {} : { authorization: caller.authorization })
          },
          body,
          headersTimeout: 30_000,
          bodyTimeout: 30_000
        })
        const text = await res.body.text()
        const reply = res.statusCode === 200 ? JSON.parse(text) : undefined
        const result = reply?.result
        ok = result !== undefined && result.isError !== true && reply.id === id
        if (ok) violation = checkAnswer(corpus, "search", 0, caller.level, JSON.stringify(result.structuredContent))
      } catch {
        ok = false
      }
      if (measuring) samples.push({ ms: performance.now() - started, ok, ...(violation === undefined ? {} : { violation }) })
    }
  }

  stopAt = Date.now() + warmup * 1000
  await Promise.all(Array.from({ length: connections }, (_, i) => client(i)))
  measuring = true
  const begun = Date.now()
  stopAt = begun + seconds * 1000
  await Promise.all(Array.from({ length: connections }, (_, i) => client(i)))
  const elapsed = (Date.now() - begun) / 1000
  await pool.close()

  const latencies = samples.map((s) => s.ms)
  const errors = samples.filter((s) => !s.ok).length
  const violations = samples.filter((s) => s.violation !== undefined).length
  const figures = {
    calls: samples.length,
    calls_per_second: Math.round(samples.length / elapsed),
    p50_ms: Math.round(percentile(latencies, 50)),
    p95_ms: Math.round(percentile(latencies, 95)),
    p99_ms: Math.round(percentile(latencies, 99)),
    max_ms: Math.round(latencies.reduce((a, b) => Math.max(a, b), 0)),
    error_rate: samples.length === 0 ? 1 : errors / samples.length,
    wrong_answers: violations
  }
  const verdicts = {
    p95: figures.p95_ms <= TARGETS.p95Ms,
    p99: figures.p99_ms <= TARGETS.p99Ms,
    errors: figures.error_rate <= TARGETS.errorRate,
    answers: violations === 0
  }
  const markdown = [
    `# MCP tools/call content.search, ${connections} concurrent clients`,
    "",
    `Simulator with log-normal upstream latency (mean 80 ms, p99 250 ms), corpus ${corpusSettings.size} items; memory tier only;`,
    `questions Zipf over 200 topics, callers anonymous / free / subscriber, half 2026-07-28 and half 2025-11-25 clients;`,
    `${warmup} s warm-up, ${seconds} s measured.`,
    "",
    table(["calls", "calls/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "error rate", "wrong answers"], [[
      figures.calls,
      figures.calls_per_second,
      figures.p50_ms,
      figures.p95_ms,
      figures.p99_ms,
      figures.max_ms,
      figures.error_rate.toFixed(4),
      figures.wrong_answers
    ]]),
    "",
    table(["target", "value", "met"], [
      ["p95 ≤ 500 ms", figures.p95_ms, verdicts.p95 ? "yes" : "NO"],
      ["p99 ≤ 1000 ms", figures.p99_ms, verdicts.p99 ? "yes" : "NO"],
      ["errors ≤ 1 %", (figures.error_rate * 100).toFixed(2) + " %", verdicts.errors ? "yes" : "NO"],
      ["no wrong-level answers", figures.wrong_answers, verdicts.answers ? "yes" : "NO"]
    ])
  ].join("\n")
  console.log(`\n${markdown}\n`)
  writeResult("mcp", { environment: environment(), options: { seconds, connections, warmup }, targets: TARGETS, figures, verdicts }, markdown)
  return Object.values(verdicts).every(Boolean) ? 0 : 1
}

runMain(main)
