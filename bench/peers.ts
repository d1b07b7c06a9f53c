/**
 * Cache peers, in one process, on the same values (1,000 keys of ~2 KB JSON) and the same
 * redis-server (test harness starter): our memory-hit and Redis-hit `get` (the library's layers
 * from src/cache) against bentocache, cache-manager and Effect's `Cache`; a plain `Map` and raw
 * ioredis `GET` as floors. Each contender runs for `--seconds`; ops/s from an untimed loop, p50 /
 * p99 from a second pass timing every operation (`process.hrtime`, which adds ~30–60 ns to the
 * nanosecond-scale memory figures). Redis hits run 64 in flight.
 *
 *   npm run bench:peers -- [--seconds 3] [--keys 1000] [--in-flight 64] [--only memory|redis]
 *
 * Writes bench/results/peers.json, .md and .svg. Exits 1 when our in-process memory get is below
 * 10 M ops/s or below 50× bentocache's (when the memory part ran).
 */
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { redisDriver } from "bentocache/drivers/redis"
import { createCache } from "cache-manager"
import { Cache, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { readFileSync } from "node:fs"
import * as CacheStack from "../src/cache/CacheStack.js"
import type { CacheEntry } from "../src/cache/Envelope.js"
import * as MemoryTier from "../src/cache/MemoryTier.js"
import * as RedisTier from "../src/cache/RedisTier.js"
import type { TieredCache } from "../src/cache/TieredCache.js"
import * as RedisAdapter from "../src/redis/Redis.js"
import { type RedisServer, startRedis } from "../test/support/services.js"
import { runMain } from "./harness/processes.js"
import { argNumber, argString, barChart, environment, table, writeResult } from "./harness/report.js"
import { benchSeconds, fmt, markdownHeader } from "./harness/suite.js"

const seconds = benchSeconds(3)
const keyCount = argNumber("keys", 1_000)
const inFlight = argNumber("in-flight", 64)
/** `memory` or `redis` runs that part alone (e.g. under `node --cpu-prof`); default both. */
const only = argString("only", "all")

const keys = Array.from({ length: keyCount }, (_, i) => `content:bench:${i}:1:html`)
const text = (i: number) => JSON.stringify({ id: i, title: `Item ${i}`, body: "x".repeat(2_000) })
const strings = new Map(keys.map((k, i) => [k, text(i)]))
const bytes = new Map(keys.map((k, i) => [k, new TextEncoder().encode(text(i))]))

interface Figure {
  readonly tier: "memory" | "redis"
  readonly name: string
  readonly ops_per_s: number
  readonly p50_us: number
  readonly p99_us: number
  readonly misses: number
  /** Process CPU time (user + system) per operation, µs: steadier than ops/s on a shared machine. */
  readonly cpu_us_per_op?: number
}

const sortedPct = (xs: Float64Array, p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!
const us = (ns: number) => Math.round(ns / 10) / 100

/** A synchronous get: untimed ops/s, then a timed pass. */
const syncFigure = (name: string, get: (k: string) => unknown): Figure => {
  let misses = 0
  let ops = 0
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    for (let i = 0; i < 10_000; i++) if (get(keys[i % keyCount]!) === undefined) misses++
    ops += 10_000
  }
  const timed = new Float64Array(Math.min(1_000_000, ops))
  for (let i = 0; i < timed.length; i++) {
    const t = process.hrtime.bigint()
    get(keys[i % keyCount]!)
    timed[i] = Number(process.hrtime.bigint() - t)
  }
  timed.sort()
  return { tier: "memory", name, ops_per_s: Math.round(ops / seconds), p50_us: us(sortedPct(timed, 50)), p99_us: us(sortedPct(timed, 99)), misses }
}

/** An Effect get, run in one running fiber (as a handler calls it). */
const effectFigure = (name: string, get: (k: string) => Effect.Effect<unknown>, found: (v: unknown) => boolean) =>
  Effect.gen(function*() {
    let misses = 0
    let ops = 0
    const end = performance.now() + seconds * 1000
    while (performance.now() < end) {
      for (let i = 0; i < 1_000; i++) if (!found(yield* get(keys[i % keyCount]!))) misses++
      ops += 1_000
    }
    const timed = new Float64Array(Math.min(300_000, ops))
    for (let i = 0; i < timed.length; i++) {
      const t = process.hrtime.bigint()
      yield* get(keys[i % keyCount]!)
      timed[i] = Number(process.hrtime.bigint() - t)
    }
    timed.sort()
    return { tier: "memory", name, ops_per_s: Math.round(ops / seconds), p50_us: us(sortedPct(timed, 50)), p99_us: us(sortedPct(timed, 99)), misses } satisfies Figure
  })

/** A Promise get, `concurrency` loops, every operation timed. */
const asyncFigure = async (tier: Figure["tier"], name: string, get: (k: string) => Promise<unknown>, concurrency: number): Promise<Figure> => {
  let misses = 0
  let ops = 0
  const lat: Array<number> = []
  const end = performance.now() + seconds * 1000
  const cpu0 = process.cpuUsage()
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    let i = w
    while (performance.now() < end) {
      const t = process.hrtime.bigint()
      const v = await get(keys[i % keyCount]!)
      if (lat.length < 2_000_000) lat.push(Number(process.hrtime.bigint() - t))
      if (v === undefined || v === null) misses++
      ops++
      i += concurrency
    }
  }))
  const cpu = process.cpuUsage(cpu0)
  const timed = Float64Array.from(lat).sort()
  return { tier, name, ops_per_s: Math.round(ops / seconds), p50_us: us(sortedPct(timed, 50)), p99_us: us(sortedPct(timed, 99)), misses, cpu_us_per_op: Math.round((cpu.user + cpu.system) / ops * 10) / 10 }
}

const entryOf = (value: Uint8Array): CacheEntry => {
  const now = Date.now()
  return { value, contentType: "application/json", createdAt: now, freshUntil: now + 3_600_000, staleUntil: now + 7_200_000, tags: [] }
}

const ourCache = (memory: MemoryTier.MemoryTier, redis?: RedisTier.RedisCacheTier) =>
  CacheStack.make({ memory, redis, writeQueueCapacity: 10_000, writeBatchSize: 100, invalidationMemory: 10_000 })

const fill = (cache: TieredCache) =>
  Effect.zipRight(cache.setEntries(keys.map((key) => ({ key, entry: entryOf(bytes.get(key)!) }))), cache.flush)

type Run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Promise<A>
type Log = (f: Figure) => void

/** Memory hits, one at a time: floors, ours, Effect's Cache, bentocache, cache-manager. */
const memoryPart = async (run: Run, log: Log) => {
  console.error(`[bench] memory hits, ${keyCount} keys, ${seconds} s per contender`)
  log(syncFigure("Map.get (floor)", (k) => strings.get(k)))
  const memory = Effect.runSync(MemoryTier.make({}))
  const ours = await run(ourCache(memory))
  await run(fill(ours))
  log(syncFigure("ours: MemoryTier.lookupSync (the HTTP hit path's get)", (k) => memory.lookupSync(k, Date.now())))
  log(await run(effectFigure("ours: TieredCache.get, in a running fiber", (k) => ours.get(k), (v) => Option.isSome(v as Option.Option<unknown>))))
  const effectCache = await run(Cache.make({ capacity: 10_000, timeToLive: Duration.hours(1), lookup: (k: string) => Effect.succeed(strings.get(k)!) }))
  await run(Effect.forEach(keys, (k) => effectCache.get(k), { discard: true }))
  log(await run(effectFigure("Effect Cache.get, in a running fiber", (k) => effectCache.get(k), (v) => v !== undefined)))
  const bentoMemory = new BentoCache({ default: "m", stores: { m: bentostore().useL1Layer(memoryDriver({ maxSize: "200mb", maxItems: 100_000 })) } })
  for (const k of keys) await bentoMemory.set({ key: k, value: strings.get(k)!, ttl: "1h" })
  log(await asyncFigure("memory", "bentocache get (memory L1)", (k) => bentoMemory.get({ key: k }), 1))
  const manager = createCache()
  for (const k of keys) await manager.set(k, strings.get(k)!, 3_600_000)
  log(await asyncFigure("memory", "cache-manager get (in-memory Keyv)", (k) => manager.get(k), 1))
  await bentoMemory.disconnect()
}

/** Redis hits, `inFlight` at a time: the ioredis floor, ours, bentocache. */
const redisPart = async (run: Run, log: Log, redisServer: RedisServer, scope: Scope.Scope) => {
  console.error(`[bench] Redis hits (${redisServer.url}), ${inFlight} in flight`)
  const raw = new IORedis(redisServer.url, { enableAutoPipelining: true })
  for (const k of keys) await raw.set(`raw:${k}`, strings.get(k)!)
  log(await asyncFigure("redis", "ioredis GET (floor, auto-pipelined)", (k) => raw.getBuffer(`raw:${k}`), inFlight))
  const adapter = await run(Layer.buildWithScope(
    RedisAdapter.layer({ url: Redacted.make(redisServer.url), connectTimeout: Duration.seconds(2), commandTimeout: Duration.seconds(2) }),
    scope
  ))
  // Values skip our memory tier (maxValueBytes 1), so every get reads Redis.
  const redisTier = await run(RedisTier.make({ prefix: "bench:" }).pipe(Effect.provide(adapter)))
  const oursRedis = await run(ourCache(Effect.runSync(MemoryTier.make({ maxValueBytes: 1 })), redisTier))
  await run(fill(oursRedis))
  log(await asyncFigure("redis", "ours: TieredCache.get (Redis tier hit)", (k) =>
    Effect.runPromise(oursRedis.get(k)).then((o) => (Option.isSome(o) && o.value.status === "HIT-REDIS" ? o : undefined)), inFlight))
  const bentoRedis = new BentoCache({ default: "r", stores: { r: bentostore().useL2Layer(redisDriver({ connection: new IORedis(redisServer.url), prefix: "bento" })) } })
  for (const k of keys) await bentoRedis.set({ key: k, value: strings.get(k)!, ttl: "1h" })
  log(await asyncFigure("redis", "bentocache get (Redis L2 only)", (k) => bentoRedis.get({ key: k }), inFlight))
  await bentoRedis.disconnect()
  raw.disconnect()
}

const main = async () => {
  const env = environment({ bentocache: pkgVersion("bentocache"), "cache-manager": pkgVersion("cache-manager") })
  const redisServer = await startRedis() as RedisServer
  const figures: Array<Figure> = []
  const log = (f: Figure) => {
    figures.push(f)
    const cpu = f.cpu_us_per_op === undefined ? "" : `, ${f.cpu_us_per_op} µs CPU/op`
    console.error(`[bench] ${f.tier} ${f.name}: ${fmt(f.ops_per_s)} ops/s, p50 ${f.p50_us} µs, p99 ${f.p99_us} µs${cpu}${f.misses > 0 ? `, ${f.misses} misses` : ""}`)
  }
  const scope = Effect.runSync(Scope.make())
  const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.extend(effect, scope))
  try {
    // ---------------------------------------------------------------- memory
    if (only !== "redis") await memoryPart(run, log)
    // ---------------------------------------------------------------- redis
    if (only !== "memory") await redisPart(run, log, redisServer, scope)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }

  const get = (name: string) => figures.find((f) => f.name.startsWith(name))
  const verdicts: Array<{ target: string; value: string; met: boolean }> = []
  const ourMemory = get("ours: MemoryTier.lookupSync")
  const bento = get("bentocache get (memory")
  if (ourMemory !== undefined && bento !== undefined) {
    verdicts.push(
      { target: "in-process memory get ≥ 10 M ops/s", value: `${fmt(ourMemory.ops_per_s)} ops/s`, met: ourMemory.ops_per_s >= 10_000_000 },
      { target: "in-process memory get ≥ 50× bentocache", value: `${fmt(ourMemory.ops_per_s / bento.ops_per_s, 1)}×`, met: ourMemory.ops_per_s >= 50 * bento.ops_per_s }
    )
  }
  const ourRedis = get("ours: TieredCache.get (Redis")
  const bentoRedis = get("bentocache get (Redis")
  const floor = get("ioredis GET")
  if (ourRedis !== undefined && bentoRedis !== undefined && floor !== undefined) {
    // Ratios, not absolute figures: they carry over from a loaded machine to a quiet one.
    verdicts.push({
      target: "Redis-hit get ≥ bentocache's (ops/s), share of the ioredis floor",
      value: `${fmt(ourRedis.ops_per_s / bentoRedis.ops_per_s, 2)}× bentocache; ${fmt(ourRedis.ops_per_s / floor.ops_per_s, 2)} vs ${fmt(bentoRedis.ops_per_s / floor.ops_per_s, 2)} of the floor`,
      met: ourRedis.ops_per_s >= bentoRedis.ops_per_s
    })
  }
  const markdown = [
    markdownHeader("peers — cache get against bentocache, cache-manager and Effect's Cache", env,
      `${keyCount} keys of ~2 KB JSON, the same values in every cache; ${seconds} s per contender in one process; memory gets one at a time, Redis gets ${inFlight} in flight on one redis-server. ops/s from an untimed loop; p50/p99 from a pass timing each operation (hrtime adds ~30–60 ns). cache-manager over Redis is not measured: it needs \`@keyv/redis\`, which is not installed.`),
    table(["target", "measured", "met"], verdicts.map((v) => [v.target, v.value, v.met ? "yes" : "**no**"])),
    "",
    table(["tier", "get", "ops/s", "p50 µs", "p99 µs", "CPU µs/op", "misses"], figures.map((f) => [f.tier, f.name, fmt(f.ops_per_s), fmt(f.p50_us, 2), fmt(f.p99_us, 2), f.cpu_us_per_op === undefined ? "" : fmt(f.cpu_us_per_op, 1), f.misses])),
    ""
  ].join("\n")
  const svg = opsChart(figures)
  writeResult("peers", { ...env, settings: { seconds, keys: keyCount, in_flight: inFlight }, verdicts, figures }, markdown, svg)
  console.log(markdown)
  return verdicts.every((v) => v.met) ? 0 : 1
}

const pkgVersion = (name: string): string => {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")).version
  } catch {
    return "unknown"
  }
}

/** p50/p99 per get (µs, log scale): the percentile chart of this program. */
const opsChart = (figures: ReadonlyArray<Figure>) =>
  barChartUs(figures.map((f) => ({ label: `${f.tier}: ${f.name.replace(/ \(.*\)$/, "").replace(", in a running fiber", "")}`, p50: f.p50_us, p99: f.p99_us })))

const barChartUs = (rows: ReadonlyArray<{ label: string; p50: number; p99: number }>) =>
  barChart({
    title: "cache get latency per operation (ns, log scale)",
    unit: "ns",
    groups: rows.map((r) => r.label),
    series: [
      { name: "p50", color: "#9ecae1", values: rows.map((r) => Math.round(r.p50 * 1000)) },
      { name: "p99", color: "#08519c", values: rows.map((r) => Math.round(r.p99 * 1000)) }
    ]
  })

runMain(main)
