import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, TestClock } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Listener from "../../src/listener/Listener.js"
import { PostgresPool } from "../../src/postgres/Postgres.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import * as Metrics from "../../src/telemetry/Metrics.js"
import * as Prometheus from "../../src/telemetry/Prometheus.js"
import * as ResourceMonitor from "../../src/telemetry/ResourceMonitor.js"
import { parseStrict, sumOf, valueOf } from "./exposition.js"

const families = Effect.map(Prometheus.exposition, parseStrict)

describe("Metrics hooks", () => {
  it.effect("the Drupal client hooks feed the upstream metrics, and chain extra hooks", () =>
    Effect.gen(function*() {
      Metrics.registerUpstreamMethods(["content.search"])
      const seen: Array<string> = []
      const hooks = Metrics.drupalRpcHooks({
        onBatch: (n) => seen.push(`batch:${n}`),
        onRetry: (m) => seen.push(`retry:${m}`)
      })
      hooks.onUpstreamRequest?.({ methods: ["content.search"], seconds: 0.03, ok: true })
      hooks.onUpstreamRequest?.({ methods: ["content.search"], seconds: 2, ok: false })
      hooks.onUpstreamRequest?.({ methods: ["content.search", "user.access_context"], seconds: 0.2, ok: true })
      hooks.onUpstreamRequest?.({ methods: ["secret.undiscovered"], seconds: 0.01, ok: true })
      hooks.onBatch?.(2)
      hooks.onDedupJoin?.()
      hooks.onDedupJoin?.()
      hooks.onRetry?.("content.search")
      hooks.onRetry?.("nope")

      const f = yield* families
      const count = (method: string, outcome: string) =>
        valueOf(f, "accelerator_upstream_request_duration_seconds_count", { method, outcome })
      assert.strictEqual(count("content.search", "ok"), 1)
      assert.strictEqual(count("content.search", "error"), 1)
      assert.strictEqual(count("batch", "ok"), 1)
      assert.strictEqual(count("other", "ok"), 1)
      assert.strictEqual(
        valueOf(f, "accelerator_upstream_request_duration_seconds_bucket", { method: "content.search", outcome: "error", le: "1" }),
        0
      )
      assert.strictEqual(valueOf(f, "accelerator_upstream_batch_size_count"), 1)
      assert.strictEqual(valueOf(f, "accelerator_upstream_dedup_joins_total"), 2)
      assert.strictEqual(valueOf(f, "accelerator_upstream_retries_total", { method: "content.search" }), 1)
      assert.strictEqual(valueOf(f, "accelerator_upstream_retries_total", { method: "other" }), 1)
      assert.deepStrictEqual(seen, ["batch:2", "retry:content.search", "retry:nope"])
    }))

  it.effect("a breaker's transitions set accelerator_circuit_state", () =>
    Effect.gen(function*() {
      const transitions: Array<string> = []
      const breaker = yield* CircuitBreaker.make({
        name: "redis",
        consecutiveFailures: 2,
        cooldown: "1 second",
        onStateChange: Metrics.breakerStateHook((change) => Effect.sync(() => transitions.push(change.to)))
      })
      const state = Effect.map(families, (f) => valueOf(f, "accelerator_circuit_state", { circuit: "redis" }))
      for (let i = 0; i < 2; i++) yield* Effect.ignore(breaker.withBreaker(Effect.fail("down")))
      assert.strictEqual(yield* state, 2)
      yield* TestClock.adjust("2 seconds")
      const release = yield* Deferred.make<void>()
      const trial = yield* Effect.fork(breaker.withBreaker(Deferred.await(release)))
      yield* Effect.yieldNow()
      assert.strictEqual(yield* breaker.state, "half_open")
      assert.strictEqual(yield* state, 1)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(trial)
      assert.strictEqual(yield* state, 0)
      assert.deepStrictEqual(transitions, ["open", "half_open", "closed"])
    }))

  it.effect("cache hooks count lookups, loads, failed writes, evictions and memory drops", () =>
    Effect.gen(function*() {
      const before = yield* families
      Metrics.cacheHooks.onLookup("postgres", "stale", 4)
      Metrics.cacheHooks.onLookup("redis", "error")
      Metrics.cacheHooks.onOriginLoad(false)
      Metrics.cacheHooks.onWriteFailed("redis", 2)
      Metrics.cacheHooks.onEvict("some-key", 1024)
      Metrics.cacheHooks.onMemoryDropped()
      Metrics.cacheHooks.onLookup("memory", "hit", 0)
      const after = yield* families
      const delta = (name: string, labels: Record<string, string> = {}) =>
        valueOf(after, name, labels) - valueOf(before, name, labels)
      assert.strictEqual(delta("accelerator_cache_lookups_total", { tier: "postgres", outcome: "stale" }), 4)
      assert.strictEqual(delta("accelerator_cache_lookups_total", { tier: "redis", outcome: "error" }), 1)
      assert.strictEqual(delta("accelerator_cache_lookups_total", { tier: "memory", outcome: "hit" }), 0)
      assert.strictEqual(delta("accelerator_cache_origin_loads_total", { result: "error" }), 1)
      assert.strictEqual(delta("accelerator_cache_writes_failed_total", { tier: "redis" }), 2)
      assert.strictEqual(delta("accelerator_cache_evictions_total"), 1)
      assert.strictEqual(delta("accelerator_cache_memory_drops_total"), 1)
    }))

  it.live("trackHttp times every response on a raw node:http listener", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const s = Http.createServer((req, res) => {
            Metrics.trackHttp(req, res)
            res.writeHead(req.url?.startsWith("/content/") ? 404 : 200)
            res.end("x")
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.async<void>((resume) => {
          s.closeAllConnections()
          s.close(() => resume(Effect.void))
        })
      )
      const port = (server.address() as AddressInfo).port
      const before = yield* families
      for (const path of ["/search?q=secret-term", "/search?q=other", "/content/42", "/nowhere"]) {
        yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.text()))
      }
      // `close` fires right after the response is written; give it a moment.
      yield* Effect.sleep("50 millis")
      const after = yield* families
      const delta = (route: string, status_class: string) =>
        valueOf(after, "accelerator_http_request_duration_seconds_count", { route, status_class }) -
        valueOf(before, "accelerator_http_request_duration_seconds_count", { route, status_class })
      assert.strictEqual(delta("search", "2xx"), 2)
      assert.strictEqual(delta("content", "4xx"), 1)
      assert.strictEqual(delta("other", "2xx"), 1)
    }).pipe(Effect.scoped))
})

describe("ResourceMonitor", () => {
  it.scoped("samples process and pool gauges from the readers it is given", () =>
    Effect.gen(function*() {
      yield* ResourceMonitor.make({
        interval: "5 seconds",
        inFlight: () => 7,
        upstreamPool: () => ({ connected: 10, free: 4, pending: 3, running: 6 }),
        postgresPool: { total: () => 5, idle: () => 2, waiting: () => 1 },
        redisStatus: () => "ready",
        memoryCache: () => {
          throw new Error("broken reader")
        }
      })
      yield* TestClock.adjust("1 millis")
      const f = yield* families
      assert.strictEqual(valueOf(f, "accelerator_http_requests_in_flight"), 7)
      assert.strictEqual(valueOf(f, "accelerator_upstream_connections", { state: "open" }), 10)
      assert.strictEqual(valueOf(f, "accelerator_upstream_connections", { state: "busy" }), 6)
      assert.strictEqual(valueOf(f, "accelerator_upstream_connections", { state: "pending" }), 3)
      assert.strictEqual(valueOf(f, "accelerator_pg_pool_connections", { state: "waiting" }), 1)
      assert.strictEqual(valueOf(f, "accelerator_redis_connected"), 1)
      assert.isTrue(valueOf(f, "accelerator_process_heap_used_bytes") > 0)
      assert.isTrue(valueOf(f, "accelerator_process_resident_memory_bytes") > 0)
      assert.isTrue(valueOf(f, "accelerator_process_event_loop_delay_p99_seconds") >= 0)
      // The broken reader left its gauges unset and did not stop the others.
      assert.isFalse(f.some((family) => family.name === "accelerator_cache_memory_bytes"))
    }))

  it.effect("an event-loop sample sets p50, p99 and the interval's largest delay beyond the timer's interval, then resets the histogram", () =>
    Effect.gen(function*() {
      let resets = 0
      ResourceMonitor.sampleOnce({}, {
        percentile: (p) => (p === 50 ? 10.5e6 : 19e6),
        max: 37e6,
        count: 12,
        reset: () => void resets++
      }, 10e6)
      const f = yield* families
      assert.strictEqual(valueOf(f, "accelerator_process_event_loop_delay_p50_seconds"), 0.0005)
      assert.strictEqual(valueOf(f, "accelerator_process_event_loop_delay_p99_seconds"), 0.009)
      assert.strictEqual(valueOf(f, "accelerator_process_event_loop_delay_max_seconds"), 0.027)
      assert.strictEqual(resets, 1)
      // A recorded value under the interval (the timer ran early) is 0, never negative.
      ResourceMonitor.sampleOnce({}, { percentile: () => 9.9e6, max: 9.9e6, count: 3, reset: () => void resets++ }, 10e6)
      assert.strictEqual(valueOf(yield* families, "accelerator_process_event_loop_delay_p99_seconds"), 0)
      // An interval without observations reports 0, not the histogram's sentinel.
      ResourceMonitor.sampleOnce({}, { percentile: () => 9e18, max: 0, count: 0, reset: () => void resets++ })
      assert.strictEqual(valueOf(yield* families, "accelerator_process_event_loop_delay_max_seconds"), 0)
    }))

  it.scoped("layerFromContext reads the pools it finds in the context", () =>
    Effect.gen(function*() {
      const context = Layer.mergeAll(
        Layer.succeed(Listener.ListenerState, { inFlight: () => 11, connectionsAccepted: () => 0, draining: () => false, port: 0 }),
        Layer.succeed(PostgresPool, { total: () => 9, idle: () => 8, waiting: () => 2 })
      )
      yield* Layer.build(
        ResourceMonitor.layerFromContext({ memoryCache: () => ({ bytes: 2048, entries: 3 }) }).pipe(Layer.provide(context))
      )
      yield* TestClock.adjust("1 millis")
      const f = yield* families
      assert.strictEqual(valueOf(f, "accelerator_http_requests_in_flight"), 11)
      assert.strictEqual(valueOf(f, "accelerator_pg_pool_connections", { state: "total" }), 9)
      assert.strictEqual(valueOf(f, "accelerator_pg_pool_connections", { state: "waiting" }), 2)
      assert.strictEqual(valueOf(f, "accelerator_cache_memory_bytes"), 2048)
      assert.strictEqual(valueOf(f, "accelerator_cache_memory_entries"), 3)
    }))

  it.live("records garbage collection pauses", () =>
    Effect.gen(function*() {
      yield* ResourceMonitor.make({ interval: "1 second" })
      const before = sumOf(yield* families, "accelerator_process_gc_pause_seconds_count")
      let keep = 0
      for (let round = 0; round < 20; round++) {
        const garbage: Array<{ n: number }> = []
        for (let i = 0; i < 200_000; i++) garbage.push({ n: i })
        keep += garbage.length
        yield* Effect.sleep("5 millis")
      }
      yield* Effect.sleep("100 millis")
      const after = sumOf(yield* families, "accelerator_process_gc_pause_seconds_count")
      assert.strictEqual(keep, 4_000_000)
      assert.isTrue(after > before, `gc pauses ${before} -> ${after}`)
    }).pipe(Effect.scoped))
})
