/**
 * Acceptance specs of the telemetry through the real gateway composition (`layers/Gateway.ts`,
 * built by `startGateway` as `npm start` builds it), against the in-process simulator and the
 * suite's real Redis.
 *
 * Effect's metric registry is process-global and this file runs in its own worker: every spec
 * measures deltas of `/metrics` across its own workload, or compares two readings of the same
 * registry, never absolute values.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Queue, Ref } from "effect"
import { Agent, request } from "undici"
import { inject } from "vitest"
import * as Metrics from "../../src/telemetry/Metrics.js"
import { type GatewayUnderTest, startGateway } from "../http/fixtures.js"
import { type Family, parseStrict, promtoolCheck, sampleCount, sumOf, valueOf } from "./exposition.js"
import { webhookServer } from "./webhook.js"

let run = 0
/** A name no other spec (or concurrent spec file) uses: Redis prefixes, bus channels, tables. */
const unique = () => `tg${process.pid}_${Date.now().toString(36)}_${run++}`

const auth = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } })

/** One request through the gateway; the body is read (and dropped) so the response completes. */
const status = (gw: GatewayUnderTest, path: string, init?: RequestInit) =>
  Effect.promise(() => fetch(gw.base + path, init).then(async (res) => (await res.arrayBuffer(), res.status)))

const get = (gw: GatewayUnderTest, path: string, init?: RequestInit) => Effect.promise(() => gw.request(path, init))

interface Scrape {
  readonly status: number
  readonly contentType: string | null
  readonly text: string
  /** Parsed by the strict parser: a scrape that breaks the format fails the spec here. */
  readonly families: ReadonlyArray<Family>
}

const scrape = (gw: GatewayUnderTest) =>
  Effect.promise(async (): Promise<Scrape> => {
    const res = await fetch(gw.base + "/metrics")
    const text = await res.text()
    return { status: res.status, contentType: res.headers.get("content-type"), text, families: parseStrict(text) }
  })

const lookups = (s: Scrape, tier: string, outcome: string) =>
  valueOf(s.families, "accelerator_cache_lookups_total", { tier, outcome })
const originLoads = (s: Scrape, result: string) => valueOf(s.families, "accelerator_cache_origin_loads_total", { result })
const requests = (s: Scrape, match: Record<string, string> = {}) =>
  sumOf(s.families, "accelerator_http_request_duration_seconds_count", match)

/** The value of one series, `null` when the scrape has no such series. */
const valueOrNull = (s: Scrape, name: string, labels: Record<string, string> = {}): number | null => {
  try {
    return valueOf(s.families, name, labels)
  } catch {
    return null
  }
}

/** Every series of a scrape as `name{label="value",…}` (labels sorted), sorted. */
const seriesOf = (s: Scrape): ReadonlyArray<string> =>
  s.families.flatMap((f) =>
    f.samples.map((sample) =>
      `${sample.name}{${
        Object.keys(sample.labels).sort().map((k) => `${k}=${JSON.stringify(sample.labels[k])}`).join(",")
      }}`
    )
  ).sort()

/** Sample lines per family. */
const linesPerFamily = (s: Scrape): Record<string, number> =>
  Object.fromEntries(s.families.map((f) => [f.name, f.samples.length]))

describe("telemetry through the gateway", () => {
  it.scopedLive("a known workload moves lookups, origin loads and request counts by exactly its numbers", () =>
    Effect.gen(function*() {
      const config = {
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`,
        CACHE_BUS_CHANNEL: unique()
      }
      // Anonymous callers throughout: their partition is known without a lookup, so the only
      // cache lookups are those of the two keys below.
      const search = "/search?q=views%20caching&limit=3"

      // Instance A: 2 cold keys (2 origin loads), then 10 repeats answered by the hit path.
      const { before, content } = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* startGateway(config)
        const free = a.sim.corpus.items.find((i) => i.access === "free")!
        const content = `/content/${free.id}?include_content=false`
        yield* a.sim.reset
        const before = yield* scrape(a)
        const cold = [yield* get(a, content), yield* get(a, search)]
        assert.deepStrictEqual(cold.map((r) => [r.status, r.headers.get("x-cache")]), [[200, "MISS"], [200, "MISS"]])
        for (let i = 0; i < 10; i++) {
          const hit = yield* get(a, i < 6 ? content : search)
          assert.deepStrictEqual([hit.status, hit.headers.get("x-cache")], [200, "HIT-MEMORY"], `repeat ${i}`)
        }
        const upstream = (yield* a.sim.stats).methods
        assert.strictEqual(upstream["content.get_tutorial"], 1)
        assert.strictEqual(upstream["content.search"], 1)
        return { before, content }
      })) // closing A's scope drains its remote write queue into Redis

      // Instances B and C share the Redis prefix and start with empty memory: 3 Redis hits.
      const b = yield* startGateway(config)
      const fromB = [yield* get(b, content), yield* get(b, search)]
      const c = yield* startGateway(config)
      const fromC = yield* get(c, content)
      assert.deepStrictEqual(
        [...fromB, fromC].map((r) => [r.status, r.headers.get("x-cache")]),
        [[200, "HIT-REDIS"], [200, "HIT-REDIS"], [200, "HIT-REDIS"]]
      )
      assert.strictEqual((yield* b.sim.stats).methods["content.get_tutorial"] ?? 0, 0)
      assert.strictEqual((yield* c.sim.stats).methods["content.get_tutorial"] ?? 0, 0)

      const after = yield* scrape(c)
      const delta = (read: (s: Scrape) => number) => read(after) - read(before)

      // Each cold request: memory miss, Redis miss, the load lease taken and Redis read once more
      // (another miss: see TieredLoads), one origin load. Each repeat: one memory hit (counted by
      // the hit path, which answers it alone). Each Redis hit: memory miss, Redis hit.
      const expected: Record<string, Record<string, number>> = {
        memory: { hit: 10, miss: 2 + 3, stale: 0, error: 0 },
        redis: { hit: 3, miss: 2 + 2, stale: 0, error: 0 },
        postgres: { hit: 0, miss: 0, stale: 0, error: 0 }
      }
      for (const tier of Metrics.tiers) {
        for (const outcome of Metrics.lookupOutcomes) {
          assert.strictEqual(delta((s) => lookups(s, tier, outcome)), expected[tier]![outcome], `lookups ${tier}/${outcome}`)
        }
      }
      assert.strictEqual(delta((s) => sumOf(s.families, "accelerator_cache_lookups_total")), 10 + 5 + 3 + 4)
      assert.strictEqual(delta((s) => originLoads(s, "ok")), 2)
      assert.strictEqual(delta((s) => originLoads(s, "error")), 0)

      // 15 API requests (content: 1 + 6 + 1 + 1, search: 1 + 4 + 1), all 2xx, and the first
      // scrape (recorded when its response closed; the last one is rendered before it closes).
      assert.strictEqual(delta((s) => requests(s, { route: "content", status_class: "2xx" })), 9)
      assert.strictEqual(delta((s) => requests(s, { route: "search", status_class: "2xx" })), 6)
      assert.strictEqual(delta((s) => requests(s, { route: "metrics", status_class: "2xx" })), 1)
      assert.strictEqual(delta((s) => requests(s)), 16)
      // The histogram's +Inf bucket moved with its count.
      assert.strictEqual(
        delta((s) =>
          valueOf(s.families, "accelerator_http_request_duration_seconds_bucket", {
            route: "content",
            status_class: "2xx",
            le: "+Inf"
          })
        ),
        9
      )
    }))

  it.scopedLive("/metrics of a gateway that served traffic passes the strict parser and promtool", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`,
        CACHE_BUS_CHANNEL: unique(),
        DATABASE_URL: inject("databaseUrl"),
        CACHE_PG_TABLE: unique(),
        METRICS_SAMPLE_INTERVAL_MS: "50"
      })
      const free = gw.sim.corpus.items.find((i) => i.access === "free")!
      const locked = gw.sim.corpus.items.find((i) => i.access === "subscriber")!
      // Every route, hits and misses, 2xx, 4xx and a 5xx, with and without tokens.
      const traffic: ReadonlyArray<readonly [string, RequestInit | undefined, number]> = [
        ["/health/live", undefined, 200],
        ["/search?q=drupal&limit=5", undefined, 200],
        ["/search?q=drupal&limit=5", undefined, 200],
        ["/search?q=views", auth("demo-subscriber-token"), 200],
        [`/content/${free.id}`, undefined, 200],
        [`/content/${free.id}`, undefined, 200],
        [`/content/${free.id}/markdown`, undefined, 200],
        [`/content/${locked.id}`, undefined, 403],
        ["/content/999999", undefined, 404],
        ["/content/12abc", undefined, 400],
        ["/search?q=views", auth("not-a-real-token"), 401],
        ["/methods", undefined, 200],
        ["/tools", auth("demo-admin-token"), 200],
        ["/status.json", undefined, 200],
        ["/no/such/route", undefined, 404]
      ]
      for (const [path, init, expected] of traffic) {
        assert.strictEqual(yield* status(gw, path, init), expected, path)
      }
      yield* gw.sim.setFaults({ errorRates: { "content.search": 1 } })
      assert.isAtLeast(yield* status(gw, "/search?q=failing%20origin"), 500)
      yield* gw.sim.setFaults({ errorRates: {} })
      yield* Effect.sleep(Duration.millis(120)) // at least one sample of the pool and process gauges

      const s = yield* scrape(gw)
      assert.strictEqual(s.status, 200)
      assert.strictEqual(s.contentType, "text/plain; version=0.0.4; charset=utf-8")
      const check = yield* Effect.promise(() => promtoolCheck(s.text))
      assert.strictEqual(check.output, "", "promtool reported problems")
      assert.strictEqual(check.code, 0)

      const byName = new Map(s.families.map((f) => [f.name, f]))
      for (const f of s.families) {
        assert.isTrue(f.name.startsWith("accelerator_"), f.name)
        assert.isTrue(f.help.length > 0, `${f.name} has HELP`)
        if (f.type === "counter") assert.isTrue(f.name.endsWith("_total"), `${f.name} is a counter named _total`)
      }
      // The traffic is visible, in the families the gateway's wiring feeds.
      assert.strictEqual(byName.get("accelerator_http_request_duration_seconds")?.type, "histogram")
      assert.isAbove(requests(s, { route: "content", status_class: "4xx" }), 0)
      assert.isAbove(requests(s, { status_class: "5xx" }), 0)
      assert.isAbove(lookups(s, "redis", "miss"), 0)
      assert.isAbove(lookups(s, "postgres", "miss"), 0)
      assert.isAbove(sumOf(s.families, "accelerator_upstream_request_duration_seconds_count", { outcome: "ok" }), 0)
      for (
        const name of [
          "accelerator_upstream_connections",
          "accelerator_cache_memory_entries",
          "accelerator_process_heap_used_bytes",
          "accelerator_slo_breached"
        ]
      ) {
        assert.strictEqual(byName.get(name)?.type, "gauge", name)
      }
    }))

  it.scopedLive("10,000 distinct search strings, ids and tokens add no series and no label values", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway(
        // A monitor that never judges: this storm is about series, not about its latency.
        { METRICS_SAMPLE_INTERVAL_MS: "50", SLO_MIN_REQUESTS: "1000000000" },
        // The simulator's cost model OFF, explicitly: 10,000 distinct cold calls would queue for
        // minutes behind 16 simulated PHP workers, and this spec is about series, not cost.
        { corpusSize: 4_100, cost: { enabled: false } }
      )
      // undici's own client: less CPU per request than fetch, so the storm stays short.
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() => new Agent({ connections: 64 })),
        (agent) => Effect.promise(() => agent.close())
      )
      const send = (path: string, token?: string) =>
        Effect.promise(() =>
          request(gw.base + path, {
            dispatcher: agent,
            headers: token === undefined ? {} : { authorization: `Bearer ${token}` }
          }).then(async (res) => (await res.body.dump(), res.statusCode))
        )
      const corpus = gw.sim.corpus.items
      const unknownId = (i: number) => corpus.length + 1_000 + i
      const marker = "qstorm" // in every search string and unknown token, so a leak is easy to find
      interface Call {
        readonly path: string
        readonly token?: string
        readonly expected: number
      }
      // Kinds of traffic, each with distinct values: (count, the i-th call).
      const kinds: ReadonlyArray<readonly [number, (i: number) => Call]> = [
        [3_000, (i) => ({ path: `/search?q=${marker}${i}&limit=1`, expected: 200 })],
        [1_000, (i) => ({ path: `/search?q=${marker}${i}%20views&limit=1`, token: "demo-subscriber-token", expected: 200 })],
        [1_000, (i) => ({ path: `/search?q=${marker}${i}&limit=1000`, expected: 400 })],
        [2_000, (i) => {
          const item = corpus[i]!
          return { path: `/content/${item.id}?include_content=false`, expected: item.access === "free" ? 200 : 403 }
        }],
        [1_000, (i) => ({ path: `/content/${corpus[3_000 + i]!.id}?include_content=false`, token: "demo-admin-token", expected: 200 })],
        [1_000, (i) => ({ path: `/content/${unknownId(5_000 + i)}?include_content=maybe`, expected: 400 })],
        [500, (i) => ({ path: `/content/${unknownId(i)}?include_content=false`, expected: 404 })],
        [500, (i) => ({ path: `/search?q=views&limit=1`, token: `${marker}-token-${i}`, expected: 401 })]
      ]
      const n = kinds.reduce((sum, [count]) => sum + count, 0)
      assert.strictEqual(n, 10_000)

      // Warm-up: one call of each kind, with the value just past the storm's, so every series
      // that exists once per kind (a status class seen, a partition, the pool gauges) is there
      // before the baseline.
      for (const [count, call] of kinds) {
        const { expected, path, token } = call(count)
        assert.strictEqual(yield* send(path, token), expected, path)
      }
      yield* Effect.sleep(Duration.millis(120))
      const before = yield* scrape(gw)

      // The kinds interleaved, so every kind runs alongside every other.
      const calls: Array<Call> = []
      const longest = Math.max(...kinds.map(([count]) => count))
      for (let i = 0; i < longest; i++) for (const [count, call] of kinds) if (i < count) calls.push(call(i))
      const statuses = yield* Effect.forEach(calls, (call) => send(call.path, call.token), { concurrency: 50 })
      const after = yield* scrape(gw)

      statuses.forEach((code, i) => assert.strictEqual(code, calls[i]!.expected, calls[i]!.path))
      // Every one of them was counted...
      assert.strictEqual(requests(after) - requests(before), n + 1) // + the first scrape
      // ...and the distinct questions and ids reached the origin.
      assert.isAtLeast(sumOf(after.families, "accelerator_cache_origin_loads_total") - sumOf(before.families, "accelerator_cache_origin_loads_total"), 8_000)

      // Not one series more: the same series, line for line.
      assert.deepStrictEqual(linesPerFamily(after), linesPerFamily(before))
      assert.deepStrictEqual(seriesOf(after), seriesOf(before))
      assert.strictEqual(sampleCount(after.families), sampleCount(before.families))

      // Every label value comes from a fixed set; none carries a search string, id or token.
      const allowed = new Set<string>([
        ...Metrics.routes,
        ...Metrics.statusClasses,
        ...Metrics.tiers,
        ...Metrics.lookupOutcomes,
        ...Metrics.originResults,
        ...Metrics.upstreamOutcomes,
        ...Metrics.fixedMethodLabels,
        ...Metrics.circuits,
        ...Metrics.upstreamConnectionStates,
        ...Metrics.pgPoolStates,
        ...Metrics.gcKinds,
        ...Metrics.sloObjectives,
        ...Metrics.alertResults,
        ...Metrics.upstreamMethods.values()
      ])
      const bounds = new Set(
        [
          ...Metrics.httpDurationBuckets,
          ...Metrics.upstreamDurationBuckets,
          ...Metrics.batchSizeBuckets,
          ...Metrics.gcPauseBuckets
        ].map(String).concat("+Inf")
      )
      const ids = new Set(calls.flatMap((c) => /^\/content\/(\d+)/.exec(c.path)?.slice(1) ?? []))
      assert.strictEqual(ids.size, 4_500) // distinct ids indeed
      for (const f of after.families) {
        for (const sample of f.samples) {
          for (const [name, value] of Object.entries(sample.labels)) {
            if (name === "le") {
              assert.isTrue(bounds.has(value), `${f.name} le=${value}`)
              continue
            }
            assert.isTrue(allowed.has(value), `${f.name} ${name}=${JSON.stringify(value)} is not from a fixed set`)
            assert.isFalse(ids.has(value), `${f.name} ${name} carries an id`)
          }
        }
      }
      assert.notInclude(after.text, marker)
      assert.notInclude(after.text, "demo-")
    }), 60_000)

  it.scopedLive("an SLO breach posts exactly one breach alert, then exactly one recovery, then nothing", () =>
    Effect.gen(function*() {
      const webhook = yield* webhookServer()
      const gw = yield* startGateway({
        ALERT_WEBHOOK_URL: webhook.url,
        ALERT_WEBHOOK_BACKOFF_MS: "20",
        SLO_BUCKET_MS: "200",
        SLO_BUCKETS: "5",
        SLO_MIN_REQUESTS: "10",
        SLO_LATENCY_P95_MS: "100"
      }, {
        // The simulator's cost model OFF, explicitly: its bootstrap (p99 120 ms) alone would keep
        // this spec's 100 ms p95 breached; here only the injected latency decides.
        cost: { enabled: false }
      })
      const before = yield* scrape(gw)
      const breached = (s: Scrape) =>
        Object.fromEntries(Metrics.sloObjectives.map((o) => [o, valueOf(s.families, "accelerator_slo_breached", { objective: o })]))
      assert.deepStrictEqual(breached(before), { latency_p95: 0, latency_p99: 0, error_rate: 0 })

      // Cache-missing traffic (a distinct question each time): 10 callers, each pausing 50 ms
      // between requests (enough for the minimum in every window, slow or fast, without
      // loading the CPU so much that queueing alone could breach), until told to stop.
      yield* gw.sim.setFaults({ latency: { kind: "fixed", ms: 250 } })
      const stop = yield* Ref.make(false)
      const answered = yield* Ref.make<Array<number>>([])
      let next = 0
      const caller = Effect.gen(function*() {
        while (!(yield* Ref.get(stop))) {
          const code = yield* status(gw, `/search?q=slo%20${next++}&limit=1`)
          yield* Ref.update(answered, (all) => (all.push(code), all))
          yield* Effect.sleep(Duration.millis(50))
        }
      })
      const traffic = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => caller), { concurrency: "unbounded" }))
      const nextAlert = (what: string) =>
        Queue.take(webhook.received).pipe(
          Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error(`no ${what} alert within 10 s`) }),
          Effect.orDie
        )

      const breach = yield* nextAlert("breach")
      assert.strictEqual(breach.type, "slo_breach")
      assert.strictEqual(breach.objective, "latency_p95")
      assert.strictEqual(breach.service, "drupal-accelerator")
      assert.strictEqual(breach.unit, "seconds")
      assert.strictEqual(breach.threshold, 0.1)
      assert.isAbove(breach.observed, 0.1)
      assert.strictEqual(breach.window_seconds, 1)
      assert.isAtLeast(breach.requests, 10)
      assert.deepStrictEqual(breached(yield* scrape(gw)), { latency_p95: 1, latency_p99: 0, error_rate: 0 })

      yield* gw.sim.setFaults({ latency: { kind: "none" } })
      const recovery = yield* nextAlert("recovery")
      assert.strictEqual(recovery.type, "slo_recovery")
      assert.strictEqual(recovery.objective, "latency_p95")
      assert.isAtMost(recovery.observed, 0.1 * 0.9)
      assert.deepStrictEqual(breached(yield* scrape(gw)), { latency_p95: 0, latency_p99: 0, error_rate: 0 })

      // Healthy for 8 more evaluations (the monitor judging a full window each time): silence.
      yield* Effect.sleep(Duration.millis(1_600))
      const summary = (yield* get(gw, "/status.json")).body
      assert.isAtLeast(summary.slo.requests, 10, "the window held enough requests to be judged")
      assert.strictEqual(summary.slo.state, "ok")
      yield* Ref.set(stop, true)
      yield* Fiber.join(traffic)

      assert.strictEqual(yield* Queue.size(webhook.received), 0, "no alert after the recovery")
      assert.strictEqual(webhook.count(), 2)
      const codes = yield* Ref.get(answered)
      assert.isTrue(codes.every((c) => c === 200), "every request succeeded: latency, not errors, breached")
      const after = yield* scrape(gw)
      const deliveries = (s: Scrape, result: string) =>
        valueOf(s.families, "accelerator_slo_alert_deliveries_total", { result })
      assert.strictEqual(deliveries(after, "delivered") - deliveries(before, "delivered"), 2)
      assert.strictEqual(deliveries(after, "failed") - deliveries(before, "failed"), 0)
    }), 40_000)

  it.scopedLive("/status.json shows the numbers /metrics shows; /status is the HTML page", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`,
        CACHE_BUS_CHANNEL: unique(),
        METRICS_SAMPLE_INTERVAL_MS: "60000"
      })
      // Some of everything: misses, memory hits, a Redis miss, a 404, a 5xx.
      for (const path of ["/search?q=drupal", "/search?q=drupal", "/content/3", "/content/3", "/content/999999"]) {
        yield* status(gw, path)
      }
      yield* gw.sim.setFaults({ errorRates: { "content.search": 1 } })
      assert.isAtLeast(yield* status(gw, "/search?q=failing%20origin"), 500)
      yield* gw.sim.setFaults({ errorRates: {} })

      // Back to back, nothing else talking to the gateway: a scrape, the summary, a scrape.
      const first = yield* scrape(gw)
      const page = yield* get(gw, "/status.json")
      const second = yield* scrape(gw)
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.headers.get("content-type"), "application/json; charset=utf-8")
      const summary = page.body

      // Requests: each reading includes the one before it (recorded when its response closed),
      // never itself (rendered before it closes).
      assert.strictEqual(summary.http.requestsTotal, requests(first) + 1)
      assert.strictEqual(requests(second), summary.http.requestsTotal + 1)
      assert.strictEqual(summary.http.errorsTotal, requests(second, { status_class: "5xx" }))
      assert.isAbove(summary.http.errorsTotal, 0)

      assert.deepStrictEqual(summary.cache.tiers.map((t: { tier: string }) => t.tier), [...Metrics.tiers])
      for (const tier of summary.cache.tiers) {
        for (const outcome of Metrics.lookupOutcomes) {
          assert.strictEqual(tier[outcome], lookups(second, tier.tier, outcome), `${tier.tier}/${outcome}`)
          assert.strictEqual(tier[outcome], lookups(first, tier.tier, outcome), `${tier.tier}/${outcome} unchanged`)
        }
        const all = Metrics.lookupOutcomes.reduce((n, o) => n + tier[o], 0)
        assert.strictEqual(tier.hitRatio, all === 0 ? null : tier.hit / all)
      }
      assert.isAbove(summary.cache.tiers[0].hit, 0)
      assert.isAbove(summary.cache.tiers[1].miss, 0)
      assert.strictEqual(summary.cache.originLoadsTotal, sumOf(second.families, "accelerator_cache_origin_loads_total"))
      assert.isAbove(summary.cache.originLoadsTotal, 0)
      assert.strictEqual(summary.cache.evictionsTotal, valueOf(second.families, "accelerator_cache_evictions_total"))
      assert.strictEqual(summary.cache.memoryEntries, valueOf(second.families, "accelerator_cache_memory_entries"))
      assert.strictEqual(summary.cache.memoryBytes, valueOf(second.families, "accelerator_cache_memory_bytes"))
      const redis = valueOrNull(second, "accelerator_redis_connected")
      assert.strictEqual(summary.pools.redisConnected, redis === null ? null : redis === 1)

      const html = yield* get(gw, "/status")
      assert.strictEqual(html.status, 200)
      assert.strictEqual(html.headers.get("content-type"), "text/html; charset=utf-8")
      assert.match(html.text, /^<!doctype html>/i)
      assert.include(html.text, "status.json")
      assert.include(html.text, `data-key="http.requestsTotal"`)
    }))

  // The three specs below hold the gateway to its documented accounting where the current
  // wiring falls short; each names the defect it catches (see the report of this file).

  it.scopedLive("a failed origin load is counted under result=\"error\", not \"ok\"", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      yield* gw.sim.setFaults({ errorRates: { "content.search": 1 } })
      const before = yield* scrape(gw)
      assert.isAtLeast(yield* status(gw, "/search?q=failing%20origin"), 500)
      const after = yield* scrape(gw)
      assert.strictEqual(lookups(after, "memory", "miss") - lookups(before, "memory", "miss"), 1)
      assert.strictEqual(originLoads(after, "error") - originLoads(before, "error"), 1, "the failed load, as an error")
      assert.strictEqual(originLoads(after, "ok") - originLoads(before, "ok"), 0, "no successful load happened")
    }))

  for (const [mode, config, misses] of [
    // One full miss: the document, whose small reply carries the metadata too.
    ["converted whole", {}, 1],
    // Two full misses: the item's metadata (through the cache, the entry of
    // `/content/{id}?include_content=false`) and the streamed body.
    ["streamed", { MARKDOWN_WHOLE_BELOW_BYTES: "0" }, 2]
  ] as const) {
    it.scopedLive(`a cold Markdown request (${mode}) counts its origin loads like every other full miss`, () =>
      Effect.gen(function*() {
        const gw = yield* startGateway(config)
        const free = gw.sim.corpus.items.find((i) => i.access === "free")!
        yield* gw.sim.reset
        const before = yield* scrape(gw)
        const md = yield* get(gw, `/content/${free.id}/markdown`)
        assert.deepStrictEqual([md.status, md.headers.get("x-cache")], [200, "MISS"])
        // The first request asks Drupal; the second does not.
        const calls = (yield* gw.sim.stats).methods["content.get_tutorial"] ?? 0
        assert.strictEqual(calls, misses, "one upstream call per full miss")
        const again = yield* get(gw, `/content/${free.id}/markdown`)
        assert.strictEqual(again.headers.get("x-cache"), "HIT-MEMORY")
        assert.strictEqual((yield* gw.sim.stats).methods["content.get_tutorial"], calls)
        const after = yield* scrape(gw)
        assert.strictEqual(lookups(after, "memory", "miss") - lookups(before, "memory", "miss"), misses)
        assert.strictEqual(lookups(after, "memory", "hit") - lookups(before, "memory", "hit"), 1)
        assert.strictEqual(originLoads(after, "ok") - originLoads(before, "ok"), misses, "the fetches after the misses are origin loads")
      }))
  }

  it.scopedLive("the configured Redis and PostgreSQL are sampled into /metrics and /status.json", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`,
        CACHE_BUS_CHANNEL: unique(),
        DATABASE_URL: inject("databaseUrl"),
        CACHE_PG_TABLE: unique(),
        METRICS_SAMPLE_INTERVAL_MS: "50"
      })
      assert.strictEqual(yield* status(gw, "/search?q=drupal"), 200)
      yield* Effect.sleep(Duration.millis(150))
      const s = yield* scrape(gw)
      const summary = (yield* get(gw, "/status.json")).body
      assert.isNotNull(valueOrNull(s, "accelerator_upstream_connections", { state: "open" }))
      assert.isNotNull(summary.pools.upstream)
      assert.strictEqual(valueOrNull(s, "accelerator_redis_connected"), 1, "Redis status sampled")
      assert.isAtLeast(valueOrNull(s, "accelerator_pg_pool_connections", { state: "total" }) ?? -1, 1, "pool sampled")
      assert.strictEqual(summary.pools.redisConnected, true)
      assert.isNotNull(summary.pools.postgres)
    }))
})
