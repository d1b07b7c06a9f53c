/**
 * The Drupal client's batching policies (`DRUPAL_BATCH` = off | always | adaptive) on the
 * simulator's cost model: a pool of PHP workers, a bootstrap per HTTP request, items run one
 * after another (`drupal-jsonrpc.md`, "What a request costs a real Drupal").
 *
 *   npx tsx bench/batching.ts [--rounds 3] [--waves 20] [--bursts 3] [--burst 400]
 *
 * The simulator runs in its own process with its default cost model; the client runs here, one
 * fresh client per policy and round, each warmed by the same calls. Two loads:
 * - low: waves of 8 concurrent cold items, one wave after the other;
 * - saturating: `--burst` cold items at once.
 * Per policy and load it reports upstream HTTP requests, busy worker time (`worker_ms`), time
 * queued for a worker (`queue_ms`) and call latency p50/p99, as medians over the interleaved
 * rounds. Writes bench/results/batching.json and bench/results/batching.md.
 *
 * The calls ask items without their bodies: the cost of an item is then the model's
 * (`SIM_ITEM_MS` in a worker), not the simulator's own CPU for rendering bodies, which on a
 * 2-core machine runs on one thread shared by all its "workers" and would measure the machine
 * instead of the policy.
 */
import { Duration, Effect, Exit, Scope } from "effect"
import { bearer } from "../src/drupal/Credentials.js"
import type { BatchMode } from "../src/drupal/BatchPolicy.js"
import * as DrupalRpc from "../src/drupal/DrupalRpc.js"
import { clientOptions as specClientOptions } from "../test/drupal/fixtures.js"
import { findFreePort, runMain, shutdown, startSimulator } from "./harness/processes.js"
import { argNumber, environment, table, writeResult } from "./harness/report.js"
import { percentile } from "./harness/stats.js"

const rounds = argNumber("rounds", 3)
const waves = argNumber("waves", 20)
const bursts = argNumber("bursts", 3)
const burstSize = argNumber("burst", 400)
const corpusSize = 20_000
// A subscriber reads every item: no call is refused, so every call pays the full cost.
const reader = bearer("demo-subscriber-token")
const MODES: ReadonlyArray<BatchMode> = ["off", "always", "adaptive"]

interface SimStats {
  readonly http_requests: number
  readonly worker_ms: number
  readonly queue_ms: number
}

const stats = async (url: string): Promise<SimStats> => (await (await fetch(`${url}/__sim/stats`)).json()) as SimStats

// The specs' client options (production defaults), with every policy given the same batching
// knobs, no retries (a failed call is counted, not hidden) and a breaker that never opens.
const clientOptions = (url: string, mode: BatchMode): DrupalRpc.DrupalRpcOptions =>
  specClientOptions(url, {
    maxConnections: 64,
    headersTimeout: Duration.seconds(30),
    callTimeout: Duration.seconds(30),
    batchWindow: Duration.millis(2),
    batch: { mode, inFlightThreshold: 8, latencyFactor: 2 },
    retry: { maxAttempts: 1, base: Duration.millis(50), cap: Duration.millis(50), maxElapsed: Duration.seconds(1) },
    breaker: { consecutiveFailures: 1_000_000, failureRatio: 1, minimumCalls: 1_000_000, window: Duration.seconds(10), cooldown: Duration.seconds(1) }
  })

interface Measure {
  readonly requests: number
  readonly worker_ms: number
  readonly queue_ms: number
  readonly p50_ms: number
  readonly p99_ms: number
  readonly errors: number
}

/** Runs `load` and measures it against the simulator's counters. */
const measure = async (url: string, load: () => Promise<Array<{ ms: number; ok: boolean }>>): Promise<Measure> => {
  const before = await stats(url)
  const calls = await load()
  const after = await stats(url)
  const ms = calls.filter((c) => c.ok).map((c) => c.ms)
  return {
    requests: after.http_requests - before.http_requests,
    worker_ms: Math.round(after.worker_ms - before.worker_ms),
    queue_ms: Math.round(after.queue_ms - before.queue_ms),
    p50_ms: Math.round(percentile(ms, 50)),
    p99_ms: Math.round(percentile(ms, 99)),
    errors: calls.filter((c) => !c.ok).length
  }
}

const main = async () => {
  const env = environment()
  // The simulator's own defaults: the cost model on, no network latency, no faults.
  const sim = await startSimulator({ port: await findFreePort(), env: { SIM_CORPUS_SIZE: String(corpusSize), SIM_LARGE_SHARE: "0" } })
  let nextId = 1
  const fresh = (n: number) => Array.from({ length: n }, () => 1 + (nextId++ % corpusSize))
  const results: Record<string, Array<{ low: Measure; saturating: Measure }>> = {}
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const mode of MODES) {
        const scope = Effect.runSync(Scope.make())
        const rpc = await Effect.runPromise(Scope.extend(DrupalRpc.make(clientOptions(sim.url, mode)), scope))
        const one = async (id: number) => {
          const started = performance.now()
          const exit = await Effect.runPromiseExit(rpc.call("content.get_tutorial", { id, include_content: false }, reader))
          return { ms: performance.now() - started, ok: Exit.isSuccess(exit) }
        }
        const wave = (ids: Array<number>) => Promise.all(ids.map(one))
        // The same warm-up for every policy: some quiet waves, then one burst.
        for (let i = 0; i < 5; i++) await wave(fresh(8))
        await wave(fresh(100))
        const low = await measure(sim.url, async () => {
          const all: Array<{ ms: number; ok: boolean }> = []
          for (let i = 0; i < waves; i++) all.push(...(await wave(fresh(8))))
          return all
        })
        const saturating = await measure(sim.url, async () => {
          const all: Array<{ ms: number; ok: boolean }> = []
          for (let i = 0; i < bursts; i++) all.push(...(await wave(fresh(burstSize))))
          return all
        })
        await Effect.runPromise(Scope.close(scope, Exit.void))
        ;(results[mode] ??= []).push({ low, saturating })
        process.stdout.write(
          `round ${round} ${mode.padEnd(8)} low p50 ${low.p50_ms} p99 ${low.p99_ms} req ${low.requests} | ` +
            `saturating p50 ${saturating.p50_ms} p99 ${saturating.p99_ms} req ${saturating.requests} worker_ms ${saturating.worker_ms}\n`
        )
      }
    }
  } finally {
    await shutdown()
  }

  const median = (xs: ReadonlyArray<number>) => percentile(xs, 50)
  const summary = Object.fromEntries(MODES.map((mode) => {
    const rs = results[mode]!
    const med = (load: "low" | "saturating", key: keyof Measure) => median(rs.map((r) => r[load][key]))
    const pick = (load: "low" | "saturating") => ({
      requests: med(load, "requests"),
      worker_ms: med(load, "worker_ms"),
      queue_ms: med(load, "queue_ms"),
      p50_ms: med(load, "p50_ms"),
      p99_ms: med(load, "p99_ms"),
      errors: med(load, "errors")
    })
    return [mode, { low: pick("low"), saturating: pick("saturating") }]
  }))
  const a = summary.adaptive!, off = summary.off!, always = summary.always!
  const checks = {
    low_adaptive_p99_within_10pct_of_off: a.low.p99_ms <= off.low.p99_ms * 1.1,
    saturating_adaptive_p99_at_or_below_off: a.saturating.p99_ms <= off.saturating.p99_ms,
    saturating_adaptive_p99_at_or_below_always: a.saturating.p99_ms <= always.saturating.p99_ms
  }
  const sim_stats_note = "upstream requests, worker_ms and queue_ms are the simulator's /__sim/stats deltas"
  const rows = MODES.flatMap((mode) =>
    (["low", "saturating"] as const).map((load) => {
      const m = summary[mode]![load]
      return [mode, load, m.requests, m.worker_ms, m.queue_ms, m.p50_ms, m.p99_ms, m.errors]
    })
  )
  const md = [
    "# Batching policies on the simulator's cost model",
    "",
    `\`${env.command}\` at ${env.date} (commit ${env.commit}), ${env.machine.cpus} × ${env.machine.cpu}, Node ${env.versions.node}; machine shared: ${env.machine.shared}.`,
    `Low load: ${waves} waves of 8 concurrent cold items, one after the other; saturating: ${bursts} bursts of ${burstSize} cold items at once. Medians of ${rounds} interleaved rounds; ${sim_stats_note}.`,
    "",
    table(["policy", "load", "upstream requests", "worker_ms", "queue_ms", "p50 ms", "p99 ms", "errors"], rows),
    "",
    ...Object.entries(checks).map(([k, v]) => `- ${k}: ${v ? "yes" : "NO"}`),
    ""
  ].join("\n")
  writeResult("batching", { ...env, summary, checks, rounds: results }, md)
  process.stdout.write(`\n${md}`)
}

runMain(async () => {
  await main()
  return 0
})
