/**
 * Faults under load (issue 9, item 6): one gateway process in front of the simulator (its own
 * process, log-normal latency), real Redis and PostgreSQL, 100 closed-loop connections of a
 * mixed workload (Zipf ids, /content/{id}, /content/{id}/markdown, /search; anonymous, free and
 * subscriber callers). Each scenario has a before, a during and an after phase under continuous
 * load; after each, every shared tier is scanned for partial or failed entries, and every answer
 * of the scenario has been checked against the caller's access level.
 *
 *   npm run bench:chaos -- [--phase-seconds 10] [--connections 100] [--only redis-kill,sigterm]
 *
 * Writes bench/results/chaos.json, chaos.md and chaos.svg. Exits non-zero on a crash, a
 * wrong-level (or wrong-item, or broken-body) answer, or a corrupt entry; 5xx answered while a
 * stale copy should have been available are recorded, not failed.
 */
import * as http from "node:http"
import { Records, runLoad, type LoadRequest } from "./harness/load.js"
import { type Gateway, runMain, sleep } from "./harness/processes.js"
import { argNumber, argString, barChart, environment, table, writeResult } from "./harness/report.js"
import { startStack } from "./harness/stack.js"
import { indexesIn, recoveryMs, summarize, timeline, type Window } from "./harness/stats.js"
import { copyKey, makeVerifier, scanPostgres, scanRedis, type TierReport } from "./harness/tiers.js"
import { buildCorpus, CALLERS, checkAnswer, type CorpusSettings, KINDS, makeWorkload, questionOf } from "./harness/workload.js"

const phaseSeconds = argNumber("phase-seconds", 10)
const connections = argNumber("connections", 100)
const only = argString("only", "").split(",").filter((s) => s !== "")
const maxProgramSeconds = argNumber("max-seconds", 600)

const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 10_000, hugeItemBytes: 30 * 1024 * 1024 }
const SIM_ENV = { SIM_LATENCY: "lognormal", SIM_LATENCY_MEAN_MS: "80", SIM_LATENCY_P99_MS: "250" }
/** Short fresh times so entries go stale during the run and stale-while-revalidate is exercised. */
const GATEWAY_ENV = {
  CACHE_CONTENT_FRESH_MS: "5000",
  CACHE_SEARCH_FRESH_MS: "5000",
  CACHE_MARKDOWN_FRESH_MS: "5000",
  DRUPAL_CALL_TIMEOUT_MS: "5000",
  DRUPAL_HEADERS_TIMEOUT_MS: "4000",
  CACHE_HARD_TIMEOUT_MS: "8000",
  SHUTDOWN_TIMEOUT_MS: "5000",
  // Room for the whole working set, so that a copy answered earlier is certainly still in memory
  // (evictions are counted per scenario; with any, the in-memory stale check stands aside).
  CACHE_MEMORY_MAX_BYTES: "536870912"
}
/** Grace of each route's namespace (the gateway's defaults): a copy this old may still be served stale. */
const GRACE_MS = { content: 3_600_000, markdown: 3_600_000, search: 600_000 } as const

/** A counter of the gateway's /metrics (summed over its series); NaN when it cannot be read. */
const counter = async (url: string, name: string): Promise<number> => {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
    return text.split("\n").filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(" ").pop()), 0)
  } catch {
    return Number.NaN
  }
}
/** Memory-tier evictions so far. */
const memoryEvictions = (url: string) => counter(url, "accelerator_cache_evictions_total")
/** Times the memory tier was emptied after the invalidation bus reconnected (e.g. Redis restarted). */
const memoryDrops = (url: string) => counter(url, "accelerator_cache_memory_drops_total")
const NO_FAULTS = { errorRates: {}, hangRate: 0, resetRate: 0, slowStreamRate: 0 }

const programStart = Date.now()
const corpus = buildCorpus(corpusSettings)
const workload = makeWorkload(corpus, { ids: 9_000, questions: 2_500, exclude: new Set([corpusSettings.hugeItemId]) })

interface ScenarioContext {
  /** Replaces the next request (e.g. abandoned); undefined = the workload's. */
  mutate: ((r: LoadRequest) => LoadRequest) | undefined
  note: Record<string, unknown>
}

interface Scenario {
  readonly name: string
  readonly what: string
  readonly start: (ctx: ScenarioContext) => Promise<void>
  readonly end: (ctx: ScenarioContext) => Promise<void>
}

const main = async () => {
  const stack = await startStack({ corpus: corpusSettings, simulatorEnv: SIM_ENV, gatewayEnv: GATEWAY_ENV })
  const verifier = makeVerifier(corpus, stack.simulator.url)
  let gateway: Gateway = await stack.addGateway("gateway")
  const gatewayPort = gateway.port
  const crashes: Array<{ scenario: string; code: number | null; signal: string | null; error?: string; log: string }> = []
  /** Last time each (caller, path) was answered 200, across scenarios. */
  const lastOk = new Map<string, number>()
  /** When the gateway's memory tier last started empty (a new gateway process), on the records' clock. */
  let memoryStartedAt = 0
  /** Memory drops the current gateway process has reported (its counter starts at 0). */
  let dropsSeen = 0
  const memoryEmptied = () => {
    memoryStartedAt = Date.now() - programStart
  }
  const gatewayRestarted = () => {
    dropsSeen = 0
    memoryEmptied()
  }
  const epoch = programStart

  let currentScenario = "warm-up"
  let restarting: Promise<void> | undefined
  /** A gateway that exited on its own is a crash: recorded, and a new one started at once. */
  const ensureGateway = (scenario: string): Promise<void> =>
    restarting ??= (async () => {
      if (gateway.proc.unexpectedExit !== undefined) {
        const log = gateway.proc.logTail(60)
        const error = log.split("\n").find((l) => /^\w*Error\b|Error:|Unhandled|uncaught/i.test(l) && !l.startsWith("{")) ?? "see log"
        crashes.push({ scenario, code: gateway.proc.unexpectedExit.code, signal: gateway.proc.unexpectedExit.signal, error, log })
        console.error(`[bench] CRASH in ${scenario}: ${error}; starting a new gateway`)
        gateway.proc.expected = true
        gateway = await stack.addGateway("gateway", gatewayPort)
        gatewayRestarted()
      }
    })().finally(() => (restarting = undefined))
  const watchdog = setInterval(() => {
    if (gateway.proc.unexpectedExit !== undefined) void ensureGateway(currentScenario)
  }, 250)
  // The gateway empties its memory tier when the invalidation bus reconnects (after Redis came
  // back): from then on a copy answered earlier is no longer certainly in memory. Sampled every
  // 250 ms; a drop moves the memory's start to the sample that saw it (conservative).
  const dropWatch = setInterval(() => {
    void memoryDrops(gateway.url).then((drops) => {
      if (drops > dropsSeen) {
        dropsSeen = drops
        memoryEmptied()
      }
    })
  }, 250)

  // ---------------------------------------------------------------------------------- scenarios
  const slowReaders: Array<http.ClientRequest> = []
  const slowReaderStats = { started: 0, headers: 0, bytes: 0, statuses: {} as Record<string, number> }

  const scenarios: Array<Scenario> = [
    {
      name: "redis-kill",
      what: "redis-server SIGKILLed, restarted (empty) after the phase",
      start: () => stack.redis.kill(),
      end: () => stack.redis.restart()
    },
    {
      name: "postgres-stop",
      what: "PostgreSQL stopped (fast shutdown), restarted after the phase",
      start: async () => {
        const pid = stack.postgres.pid
        if (pid !== undefined) process.kill(pid, "SIGINT")
        for (let i = 0; i < 100 && stack.postgres.pid !== undefined; i++) await sleep(100)
      },
      end: () => stack.postgres.restart()
    },
    {
      name: "upstream-errors",
      what: "30 % of upstream requests answered HTTP 503",
      start: async () => void await stack.setFaults({ errorRates: { "*": 0.3 }, errorKind: "http503" }),
      end: async () => void await stack.setFaults(NO_FAULTS)
    },
    {
      name: "upstream-hangs",
      what: "20 % of upstream requests never answered",
      start: async () => void await stack.setFaults({ hangRate: 0.2 }),
      end: async () => void await stack.setFaults(NO_FAULTS)
    },
    {
      name: "upstream-resets",
      what: "30 % of upstream connections reset after the request",
      start: async () => void await stack.setFaults({ resetRate: 0.3 }),
      end: async () => void await stack.setFaults(NO_FAULTS)
    },
    {
      name: "upstream-slow-bodies",
      what: "every streamed upstream reply paced at 32 KB/s",
      start: async () => void await stack.setFaults({ slowStreamRate: 1, streamBytesPerSecond: 32 * 1024 }),
      end: async () => void await stack.setFaults(NO_FAULTS)
    },
    {
      name: "upstream-down",
      what: "the simulator process SIGKILLed, restarted after the phase",
      start: async () => void await stack.simulator.proc.stop("SIGKILL"),
      end: async () => void await stack.restartSimulator()
    },
    {
      name: "sigterm",
      what: "SIGTERM to the gateway under load; a new one started on the same port once it exited",
      start: async (ctx) => {
        const old = gateway
        const t0 = Date.now()
        const exit = await old.proc.stop("SIGTERM", 20_000)
        ctx.note["exit"] = exit
        ctx.note["shutdown_ms"] = Date.now() - t0
        if (exit.code !== 0) crashes.push({ scenario: "sigterm", code: exit.code, signal: exit.signal, error: "exit code after SIGTERM is not 0", log: old.proc.logTail(40) })
        gateway = await stack.addGateway("gateway", gatewayPort)
        gatewayRestarted()
        ctx.note["down_ms"] = Date.now() - t0
      },
      end: async () => {}
    },
    {
      name: "abandoning-clients",
      what: "half of the requests abandoned by their client at a random moment (0–300 ms)",
      start: async (ctx) => {
        ctx.mutate = (r) => (Math.random() < 0.5 ? { ...r, abandonAfterMs: Math.random() * 300 } : r)
      },
      end: async (ctx) => {
        ctx.mutate = undefined
      }
    },
    {
      name: "slow-readers",
      what: "40 clients fetch a 30 MB item's Markdown; 20 never read, 20 read 16 KB/s",
      start: async () => {
        for (let i = 0; i < 40; i++) {
          slowReaderStats.started++
          const req = http.get({ host: "127.0.0.1", port: gateway.port, path: `/content/${corpusSettings.hugeItemId}/markdown`, agent: false }, (res) => {
            slowReaderStats.headers++
            slowReaderStats.statuses[String(res.statusCode)] = (slowReaderStats.statuses[String(res.statusCode)] ?? 0) + 1
            res.pause()
            res.on("error", () => {})
            if (i % 2 === 1) {
              const timer = setInterval(() => {
                const chunk = res.read(16 * 1024) as Buffer | null
                if (chunk !== null) slowReaderStats.bytes += chunk.length
              }, 1000)
              res.on("close", () => clearInterval(timer))
            }
          })
          req.on("error", () => {})
          slowReaders.push(req)
        }
      },
      end: async () => {
        for (const r of slowReaders) r.destroy()
        slowReaders.length = 0
      }
    }
  ]
  const selected = only.length === 0 ? scenarios : scenarios.filter((s) => only.includes(s.name))

  // ---------------------------------------------------------------------------------- warm-up
  const check = (req: LoadRequest, body: string) => checkAnswer(corpus, req.kind, req.id, req.caller.level, body)
  const runPhaseLoad = (records: Records, ctx: ScenarioContext, seconds: number) =>
    runLoad({
      targets: () => [gateway.url],
      connections,
      next: () => {
        const r = workload.next()
        return ctx.mutate ? ctx.mutate(r) : r
      },
      maxSeconds: seconds,
      maxRequests: 5_000_000,
      requestTimeoutMs: 15_000,
      check,
      epoch,
      records
    })

  const progress = (label: string, records: Records) => {
    let seen = 0
    const timer = setInterval(() => {
      // Records are pushed when a request ends: the last 2 s are the records added since the last tick.
      const idx = Array.from({ length: records.length - seen }, (_, k) => seen + k)
      const w = summarize(records, idx, 2)
      seen = records.length
      console.error(`[${label}] ${seen} requests; ended in the last 2 s: ${w.rps} req/s, p99 ${w.p99_ms} ms, errors ${w.errors}, stale ${w.cache["STALE"] ?? 0}`)
    }, 2_000)
    return () => clearInterval(timer)
  }

  console.error(`[bench] warm-up ${phaseSeconds} s`)
  {
    const records = new Records()
    const ctx: ScenarioContext = { mutate: undefined, note: {} }
    const stop = progress("warm-up", records)
    await runPhaseLoad(records, ctx, phaseSeconds).done
    stop()
    for (let i = 0; i < records.length; i++) if (records.status[i] === 200) lastOk.set(records.key[i]!, records.t[i]!)
  }

  const results: Array<Record<string, unknown>> = []
  for (const scenario of selected) {
    if ((Date.now() - programStart) / 1000 > maxProgramSeconds) {
      console.error(`[bench] time bound reached (${maxProgramSeconds} s): skipping ${scenario.name} and the rest`)
      break
    }
    currentScenario = scenario.name
    await ensureGateway(scenario.name)
    console.error(`\n[bench] scenario ${scenario.name}: ${scenario.what}`)
    const records = new Records()
    const evictionsAtStart = await memoryEvictions(gateway.url)
    const ctx: ScenarioContext = { mutate: undefined, note: {} }
    const stopProgress = progress(scenario.name, records)
    // Bounded, with room for a slow fault step (a gateway start can take a minute on a busy machine).
    const load = runPhaseLoad(records, ctx, phaseSeconds * 3 + 240)
    const t0 = Date.now() - epoch
    await sleep(phaseSeconds * 1000)
    const faultStart = Date.now() - epoch
    let faultError: string | undefined
    try {
      await scenario.start(ctx)
      const left = faultStart + phaseSeconds * 1000 - (Date.now() - epoch)
      if (left > 0) await sleep(left)
      await scenario.end(ctx)
    } catch (error) {
      faultError = error instanceof Error ? error.message : String(error)
      console.error(`[bench] ${scenario.name}: fault step failed: ${faultError}`)
    }
    const faultEnd = Date.now() - epoch
    await sleep(phaseSeconds * 1000)
    // The end of the run is when the load stops starting requests, not when the last one drained.
    const tEnd = Date.now() - epoch
    await load.stop()
    stopProgress()
    await ensureGateway(scenario.name)
    const crashed = crashes.filter((c) => c.scenario === scenario.name).length

    const seconds = (a: number, b: number) => (b - a) / 1000
    const before = summarize(records, indexesIn(records, t0, faultStart), seconds(t0, faultStart))
    const during = summarize(records, indexesIn(records, faultStart, faultEnd), seconds(faultStart, faultEnd))
    const after = summarize(records, indexesIn(records, faultEnd, tEnd), seconds(faultEnd, tEnd))
    const all = summarize(records, indexesIn(records, t0, tEnd), seconds(t0, tEnd))
    // Buckets long enough for ~50 requests at the baseline rate, so one slow request is not a p99.
    const bucketMs = Math.min(5_000, Math.max(1_000, Math.ceil(50 / Math.max(1, before.rps)) * 1_000))
    const buckets = timeline(records, t0, tEnd, undefined, bucketMs)
    const violations: Record<string, number> = {}
    const violationExamples: Array<string> = []
    let stale = 0
    const fiveXxWhileStale: Array<{ key: string; status: number; code: string | undefined; t_ms: number; last_ok_ms_before: number }> = []
    const fiveXxCodes: Record<string, number> = {}
    let fiveXxWhileStaleCount = 0
    // A 5xx is a failure when a copy within grace was certainly in the memory tier: answered 200
    // by this same gateway process since its memory was last emptied (no restart, no bus drop), small enough for the memory tier, within
    // its namespace's grace, and no memory entry evicted during the scenario.
    let fiveXxWhileStaleInMemory = 0
    const fiveXxWhileStaleInMemoryExamples: Array<{ key: string; status: number; t_ms: number; last_ok_ms_before: number }> = []
    const evicted = (await memoryEvictions(gateway.url)) - evictionsAtStart
    const copyInMemory = (key: string, kind: number, okAt: number, at: number) => {
      if (!(evicted <= 0) || okAt < memoryStartedAt) return false
      const route = KINDS[kind]!
      if (at - okAt >= GRACE_MS[route]) return false
      const id = /\/content\/(\d+)/.exec(key)?.[1]
      return id === undefined || corpus.items[Number(id) - 1]?.large !== true
    }
    const fiveXxByKind: Record<string, number> = {}
    for (let i = 0; i < records.length; i++) {
      const v = records.violation[i]
      if (v !== undefined) {
        violations[v] = (violations[v] ?? 0) + 1
        if (violationExamples.length < 10) violationExamples.push(`${v}: ${records.key[i]}`)
      }
      if (records.cache[i] === 5) stale++
      const s = records.status[i]!
      const key = records.key[i]!
      if (s === 200) lastOk.set(key, records.t[i]!)
      else if (s >= 500) {
        const codeKey = `${s} ${records.code[i] ?? "no-code"}`
        fiveXxCodes[codeKey] = (fiveXxCodes[codeKey] ?? 0) + 1
        const ok = lastOk.get(key)
        if (ok !== undefined && ok < records.t[i]! && copyInMemory(key, records.kind[i]!, ok, records.t[i]!)) {
          fiveXxWhileStaleInMemory++
          if (fiveXxWhileStaleInMemoryExamples.length < 10) {
            fiveXxWhileStaleInMemoryExamples.push({ key, status: s, t_ms: records.t[i]! - faultStart, last_ok_ms_before: records.t[i]! - ok })
          }
        }
        if (ok !== undefined && ok < records.t[i]!) {
          fiveXxWhileStaleCount++
          const k = `${KINDS[records.kind[i]!]} ${s} ${records.code[i] ?? "no-code"}`
          fiveXxByKind[k] = (fiveXxByKind[k] ?? 0) + 1
          if (fiveXxWhileStale.length < 10) fiveXxWhileStale.push({ key, status: s, code: records.code[i], t_ms: records.t[i]! - faultStart, last_ok_ms_before: records.t[i]! - ok })
        }
      }
    }
    console.error(`[bench] ${scenario.name}: scanning Redis and PostgreSQL`)
    const tiers: Array<TierReport> = [
      await scanRedis(stack.redis.url, "da:", corpus, verifier),
      await scanPostgres(stack.postgres.url, "public.accelerator_cache", corpus, verifier)
    ]
    const corrupt = tiers.reduce((n, t) => n + t.corrupt, 0)
    // A 5xx is also a failure when a reachable tier held a servable copy of its answer: stored
    // (by any process) before the request began and within grace when it ended. The scan runs
    // after the scenario, so a copy deleted or overwritten since is not seen: a lower bound.
    // The tier the scenario takes down is not counted as reachable.
    const downTier = scenario.name === "redis-kill" ? "redis" : scenario.name === "postgres-stop" ? "postgres" : undefined
    let fiveXxWhileCopyInTier = 0
    const fiveXxWhileCopyInTierExamples: Array<{ key: string; status: number; code: string | undefined; tier: string; t_ms: number; stored_ms_before: number }> = []
    // The check's own liveness: the share of 200 answers whose copy the index finds in a tier.
    let okAnswers = 0
    let okAnswersIndexed = 0
    for (let i = 0; i < records.length; i++) {
      const s = records.status[i]!
      if (s !== 200 && s < 500) continue
      const caller = CALLERS[records.caller[i]!]!
      const question = questionOf(records.key[i]!.slice(caller.name.length + 1))
      if (question === undefined) continue
      const key = copyKey(question.namespace, caller.level, question.question)
      if (s === 200) {
        okAnswers++
        if (tiers.some((t) => t.copies?.has(key) === true)) okAnswersIndexed++
        continue
      }
      const started = epoch + records.t[i]!
      const ended = started + records.ms[i]!
      for (const tier of tiers) {
        if (tier.tier === downTier) continue
        const copy = tier.copies?.get(key)
        if (copy !== undefined && copy.createdAt <= started && copy.staleUntil > ended) {
          fiveXxWhileCopyInTier++
          if (fiveXxWhileCopyInTierExamples.length < 10) {
            fiveXxWhileCopyInTierExamples.push({ key: records.key[i]!, status: s, code: records.code[i], tier: tier.tier, t_ms: records.t[i]! - faultStart, stored_ms_before: started - copy.createdAt })
          }
          break
        }
      }
    }
    const result = {
      name: scenario.name,
      what: scenario.what,
      fault_error: faultError ?? null,
      phases_ms: { before: faultStart - t0, during: faultEnd - faultStart, after: tEnd - faultEnd },
      requests: all.requests,
      statuses: all.statuses,
      before,
      during,
      after,
      p99_ms: { before: before.p99_ms, during: during.p99_ms, after: after.p99_ms },
      stale_answers: stale,
      recovery_ms: recoveryMs(buckets, faultEnd, before),
      recovery_bucket_ms: bucketMs,
      crashes: crashed,
      violations,
      violation_examples: violationExamples,
      five_xx_while_copy_in_memory: fiveXxWhileStaleInMemory,
      five_xx_while_copy_in_memory_examples: fiveXxWhileStaleInMemoryExamples,
      memory_evictions: evicted,
      five_xx_while_copy_in_a_tier: fiveXxWhileCopyInTier,
      five_xx_while_copy_in_a_tier_examples: fiveXxWhileCopyInTierExamples,
      ok_answers_with_a_copy_in_a_tier: okAnswers === 0 ? null : Number((okAnswersIndexed / okAnswers).toFixed(3)),
      five_xx_codes: fiveXxCodes,
      five_xx_with_earlier_200: fiveXxWhileStaleCount,
      five_xx_with_earlier_200_by_route_status: fiveXxByKind,
      five_xx_with_earlier_200_examples: fiveXxWhileStale,
      tiers: tiers.map(({ copies, ...report }) => ({ ...report, servable_copies_indexed: copies?.size ?? 0 })),
      memory_tier: "not scannable from outside the process; every answer it served was checked by the load's checker",
      corrupt_entries: corrupt,
      notes: { ...ctx.note, ...(scenario.name === "slow-readers" ? { slow_readers: slowReaderStats } : {}) },
      timeline: buckets
    }
    results.push(result)
    console.error(
      `[bench] ${scenario.name}: ${all.requests} requests, p99 ${before.p99_ms}/${during.p99_ms}/${after.p99_ms} ms, errors ${before.errors}/${during.errors}/${after.errors}, stale ${stale}, recovery ${result.recovery_ms} ms, crashes ${result.crashes}, violations ${JSON.stringify(violations)}, corrupt ${corrupt}, 5xx while a copy was in memory ${fiveXxWhileStaleInMemory}, 5xx after an earlier 200 ${fiveXxWhileStaleCount}`
    )
  }

  clearInterval(watchdog)
  clearInterval(dropWatch)
  const failures = [
    ...crashes.map((c) => `crash in ${c.scenario} (code ${c.code}, signal ${c.signal}: ${c.error ?? "see log"})`),
    ...results.flatMap((r) => Object.entries(r["violations"] as Record<string, number>).map(([v, n]) => `${n} ${v} answers in ${r["name"]}`)),
    ...results.filter((r) => (r["corrupt_entries"] as number) > 0).map((r) => `${r["corrupt_entries"]} corrupt entries after ${r["name"]}`),
    ...results.filter((r) => (r["five_xx_while_copy_in_memory"] as number) > 0).map((r) =>
      `${r["five_xx_while_copy_in_memory"]} 5xx while a copy within grace was in memory in ${r["name"]}`
    ),
    ...results.filter((r) => (r["five_xx_while_copy_in_a_tier"] as number) > 0).map((r) =>
      `${r["five_xx_while_copy_in_a_tier"]} 5xx while a reachable tier held a copy within grace in ${r["name"]}`
    )
  ]
  const env = environment({ autocannon: "not used (undici closed loop)" })
  const record = {
    ...env,
    settings: { phase_seconds: phaseSeconds, connections, corpus: corpusSettings, simulator: SIM_ENV, gateway: GATEWAY_ENV, redis: stack.redis.version, postgres: stack.postgres.version },
    verdict: failures.length === 0 ? "pass" : "fail",
    failures,
    crashes,
    scenarios: results
  }
  const fmt = (w: Window) => `${w.p99_ms ?? "—"}`
  const md = [
    `# chaos — faults under load`,
    "",
    `\`${env.command}\` on ${env.date} (commit ${env.commit}); ${env.machine.cpus} × ${env.machine.cpu}, Node ${env.versions.node}, effect ${env.versions.effect}, redis-server ${stack.redis.version}, PostgreSQL ${stack.postgres.version}.`,
    `Machine: ${env.machine.shared} (load average ${env.machine.load_average_at_start.join(", ")} at start).`,
    "",
    `One gateway process, the simulator in its own process (log-normal latency, mean 80 ms, p99 250 ms), ${connections} closed-loop connections (undici), phases of ${phaseSeconds} s before / during / after each fault. Gateway settings beyond the defaults: ${Object.entries(GATEWAY_ENV).map(([k, v]) => `${k}=${v}`).join(", ")}.`,
    "",
    `**Verdict: ${record.verdict}**${failures.length === 0 ? "" : ` — ${failures.join("; ")}`}`,
    "",
    table(
      ["scenario", "requests", "p99 before / during / after (ms)", "errors before / during / after", "stale answers", "recovery (ms)", "crashes", "wrong-level / wrong-item / bad body", "corrupt entries (Redis + PG)", "5xx while a copy was in memory", "5xx while a reachable tier held a copy (200s whose copy the index found)", "5xx after an earlier 200", "5xx codes"],
      results.map((r) => {
        const b = r["before"] as Window
        const d = r["during"] as Window
        const a = r["after"] as Window
        const v = r["violations"] as Record<string, number>
        return [
          r["name"] as string,
          r["requests"] as number,
          `${fmt(b)} / ${fmt(d)} / ${fmt(a)}`,
          `${b.errors} / ${d.errors} / ${a.errors}`,
          r["stale_answers"] as number,
          r["recovery_ms"] as number | null,
          r["crashes"] as number,
          `${v["wrong_level"] ?? 0} / ${v["wrong_item"] ?? 0} / ${v["bad_body"] ?? 0}`,
          r["corrupt_entries"] as number,
          `${r["five_xx_while_copy_in_memory"] as number}${(r["memory_evictions"] as number) > 0 ? ` (${r["memory_evictions"]} evictions: not judged)` : ""}`,
          `${r["five_xx_while_copy_in_a_tier"] as number} (${r["ok_answers_with_a_copy_in_a_tier"] === null ? "—" : `${Math.round((r["ok_answers_with_a_copy_in_a_tier"] as number) * 100)} %`})`,
          `${r["five_xx_with_earlier_200"] as number}${Object.keys(r["five_xx_with_earlier_200_by_route_status"] as object).length === 0 ? "" : ` (${Object.entries(r["five_xx_with_earlier_200_by_route_status"] as Record<string, number>).map(([k, n]) => `${k}: ${n}`).join(", ")})`}`,
          Object.entries(r["five_xx_codes"] as Record<string, number>).map(([k, n]) => `${k}: ${n}`).join(", ") || "—"
        ]
      })
    ),
    "",
    "Errors are transport failures and 5xx; abandoned requests are counted apart. Recovery: time from the end of the fault to the start of the first bucket (1–5 s, long enough for ~50 requests at the baseline rate) from which every bucket to the end of the run has p99 within max(2× baseline, baseline + 50 ms) and an error rate within baseline + 2 %; — when that never happened before the run ended. \"5xx after an earlier 200\": a 5xx for a (caller, path) answered 200 earlier in the run, i.e. a copy within grace existed somewhere (it may have lived only in a tier that was down, or in the memory of a gateway process since restarted): recorded. \"5xx while a copy was in memory\": of those, the ones where the copy was certainly in the memory tier (answered by the same gateway process after its memory tier was last emptied — a new process, or the drop of memory the gateway makes when its invalidation bus reconnects after a Redis restart, read from \`accelerator_cache_memory_drops_total\` — not a large item, within its namespace's grace, no memory eviction in the scenario): a failure. The memory tier cannot be scanned from outside; every answer was checked instead. \"5xx while a reachable tier held a copy\": a 5xx whose answer Redis or PostgreSQL held a servable copy of (a 200 entry of the caller's level partition, stored before the request began and within grace when it ended; the tier the scenario takes down excluded), read from the scan of every entry after the scenario: a failure. A copy deleted or overwritten since is not seen, so this is a lower bound; the share of 200 answers whose copy the index finds shows the check is live.",
    "",
    ...(crashes.length === 0 ? [] : ["**Crashes** (the gateway exited on its own; a new one was started at once; logs in the JSON):", "", ...crashes.map((c) => `- ${c.scenario}: exit code ${c.code}, signal ${c.signal}: \`${(c.error ?? "").slice(0, 200)}\``), ""]),
    "![p99 per scenario](chaos.svg)",
    ""
  ].join("\n")
  const svg = barChart({
    title: `chaos: p99 latency per scenario (${connections} connections)`,
    groups: results.map((r) => r["name"] as string),
    series: [
      { name: "p99 before", color: "#4a90d9", values: results.map((r) => (r["before"] as Window).p99_ms) },
      { name: "p99 during", color: "#d9534f", values: results.map((r) => (r["during"] as Window).p99_ms) },
      { name: "p99 after", color: "#5cb85c", values: results.map((r) => (r["after"] as Window).p99_ms) }
    ]
  })
  writeResult(argString("name", "chaos"), record, md, svg)
  console.log(md)
  return failures.length === 0 ? 0 : 1
}

runMain(main)
