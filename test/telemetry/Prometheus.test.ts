import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Metrics from "../../src/telemetry/Metrics.js"
import * as Prometheus from "../../src/telemetry/Prometheus.js"
import { type Family, parseStrict, promtoolCheck, sampleCount, sumOf, valueOf } from "./exposition.js"

const scrape = Effect.map(Prometheus.exposition, (text) => ({ text, families: parseStrict(text) }))

const lookup = (families: ReadonlyArray<Family>, tier: string, outcome: string) =>
  valueOf(families, "accelerator_cache_lookups_total", { tier, outcome })

describe("Prometheus exposition", () => {
  // First in this file on purpose: every spec file runs in its own worker process, so the
  // registry starts at zero here and the counts below are absolute.
  it.effect("shows exactly the counts of a known workload", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) Metrics.recordCacheLookup("memory", "hit")
      for (let i = 0; i < 3; i++) Metrics.recordCacheLookup("redis", "hit")
      Metrics.cacheHooks.onOriginLoad(true)
      Metrics.cacheHooks.onOriginLoad(true)

      const { families } = yield* scrape
      assert.strictEqual(lookup(families, "memory", "hit"), 10)
      assert.strictEqual(lookup(families, "redis", "hit"), 3)
      assert.strictEqual(valueOf(families, "accelerator_cache_origin_loads_total", { result: "ok" }), 2)
      assert.strictEqual(valueOf(families, "accelerator_cache_origin_loads_total", { result: "error" }), 0)
      // Nothing else moved: every other lookup series is there, at zero.
      let others = 0
      for (const tier of Metrics.tiers) {
        for (const outcome of Metrics.lookupOutcomes) {
          if ((tier === "memory" || tier === "redis") && outcome === "hit") continue
          assert.strictEqual(lookup(families, tier, outcome), 0, `${tier}/${outcome}`)
          others++
        }
      }
      assert.strictEqual(others, 10)
      assert.strictEqual(sumOf(families, "accelerator_cache_lookups_total"), 13)
    }))

  it.effect("the text is accepted by promtool and by a strict parser", () =>
    Effect.gen(function*() {
      // Touch every kind of metric, including a label value that needs escaping in other
      // exporters' hands (ours never has one, but the format must hold either way).
      Metrics.recordHttp("search", 200, 0.012)
      Metrics.recordHttp("content", 503, 1.7)
      Metrics.recordUpstream(["content.search"], 0.08, true)
      Metrics.drupalRpcHooks().onBatch?.(7)
      Metrics.setCircuitState("drupal", "half_open")
      Metrics.setUpstreamPool({ connected: 4, free: 1, pending: 2, running: 3 })
      Metrics.setPgPool({ total: 5, idle: 3, waiting: 0 })
      Metrics.setRedisConnected(true)
      Metrics.recordGcPause("minor", 0.002)
      yield* Metric.counter("accelerator_test.odd-name_total", { description: "line one\nback\\slash" }).pipe(
        Metric.increment
      )
      yield* Metric.counter("someone_else_total").pipe(Metric.increment)

      const { families, text } = yield* scrape

      const check = yield* Effect.promise(() => promtoolCheck(text))
      assert.strictEqual(check.output, "", "promtool reported problems")
      assert.strictEqual(check.code, 0)

      for (const f of families) {
        assert.isTrue(f.help.length > 0, `${f.name} has HELP`)
      }
      const byName = new Map(families.map((f) => [f.name, f]))
      assert.strictEqual(byName.get("accelerator_http_request_duration_seconds")?.type, "histogram")
      assert.strictEqual(byName.get("accelerator_cache_lookups_total")?.type, "counter")
      assert.strictEqual(byName.get("accelerator_circuit_state")?.type, "gauge")
      // An illegal name is made legal, and HELP keeps the escaped newline and backslash.
      assert.strictEqual(byName.get("accelerator_test_odd_name_total")?.help, "line one\nback\\slash")
      // Only the project's families are exported (Effect's own effect_fiber_* are not).
      assert.isTrue(families.every((f) => f.name.startsWith("accelerator_")))
      assert.notInclude(text, "someone_else_total")
      assert.strictEqual(
        valueOf(families, "accelerator_http_request_duration_seconds_bucket", { route: "content", status_class: "5xx", le: "1" }),
        0
      )
      assert.strictEqual(
        valueOf(families, "accelerator_http_request_duration_seconds_bucket", { route: "content", status_class: "5xx", le: "2.5" }),
        1
      )
      assert.strictEqual(valueOf(families, "accelerator_upstream_connections", { state: "busy" }), 3)
      assert.strictEqual(valueOf(families, "accelerator_circuit_state", { circuit: "drupal" }), 1)
      assert.strictEqual(valueOf(families, "accelerator_upstream_batch_size_count"), 1)
      assert.strictEqual(valueOf(families, "accelerator_upstream_batch_size_sum"), 7)
    }))

  it.effect("the strict parser rejects broken expositions", () =>
    Effect.sync(() => {
      const ok = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
      assert.strictEqual(parseStrict(ok).length, 1)
      const broken = [
        "a_total 1\n", // no HELP/TYPE
        "# HELP a_total x\na_total 1\n", // no TYPE
        "# HELP a_total x\n# TYPE a_total counter\na_totals 1\n", // wrong family
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // decreasing
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "# HELP g x\n# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n", // duplicate series
        "# HELP g x\n# TYPE g gauge\ng{a=\"x\\q\"} 1\n", // bad escape
        "# HELP g x\n# TYPE g gauge\ng 1"
      ]
      for (const text of broken) assert.throws(() => parseStrict(text), undefined, undefined, JSON.stringify(text))
    }))

  it.effect("the number of series does not grow with distinct methods, routes or search strings", () =>
    Effect.gen(function*() {
      // Discovery fills the method label set to its cap once; that is the bound.
      const discovered = Array.from({ length: Metrics.MAX_METHOD_LABELS + 10 }, (_, i) => `content.method_${i}`)
      Metrics.registerUpstreamMethods(discovered)
      assert.strictEqual(Metrics.upstreamMethods.size, Metrics.MAX_METHOD_LABELS)

      const before = yield* scrape
      const pairsBefore = Metric.unsafeSnapshot().length

      const hooks = Metrics.drupalRpcHooks()
      for (let i = 0; i < 10_000; i++) {
        const method = `storm.method_${i}`
        hooks.onUpstreamRequest?.({ methods: [method], seconds: 0.01, ok: i % 2 === 0 })
        hooks.onRetry?.(method)
        Metrics.registerUpstreamMethods([method])
        Metrics.recordHttp(`storm-route-${i}`, 200 + (i % 400), 0.001)
        Metrics.recordHttp(Metrics.routeOf(`/search?q=storm-query-${i}`), 200, 0.002)
        Metrics.recordHttp(Metrics.routeOf(`/content/storm-id-${i}`), 404, 0.003)
        Metrics.recordHttp(Metrics.routeOf(`/storm-path-${i}`), 200, 0.004)
        Metrics.setCircuitState(`storm-breaker-${i}`, "open")
      }

      const after = yield* scrape
      // Only the `other` circuit may appear, once, for all the unknown breakers.
      const newCircuit = before.families.some((f) => f.name === "accelerator_circuit_state" && f.samples.some((s) => s.labels["circuit"] === "other")) ? 0 : 1
      assert.strictEqual(sampleCount(after.families), sampleCount(before.families) + newCircuit)
      assert.strictEqual(Metric.unsafeSnapshot().length, pairsBefore + newCircuit)
      assert.notInclude(after.text, "storm")
      assert.strictEqual(Metrics.upstreamMethods.size, Metrics.MAX_METHOD_LABELS)

      // The fixed label sets account for every accelerator series: the fixed series, three per
      // registered method, and the gauges set above.
      const accelerator = Metric.unsafeSnapshot().filter((p) =>
        p.metricKey.name.startsWith("accelerator_") && !p.metricKey.name.startsWith("accelerator_test")
      ).length
      const gauges = [
        "accelerator_circuit_state",
        "accelerator_upstream_connections",
        "accelerator_pg_pool_connections",
        "accelerator_redis_connected"
      ]
      const gaugeSeries = Metric.unsafeSnapshot().filter((p) => gauges.includes(p.metricKey.name)).length
      assert.strictEqual(accelerator, Metrics.fixedSeriesCount + 3 * Metrics.MAX_METHOD_LABELS + gaugeSeries)
      assert.isAtMost(gaugeSeries, Metrics.circuits.length + 3 + 3 + 1)

      // The storm was counted, under `other` / bounded labels.
      assert.strictEqual(
        valueOf(after.families, "accelerator_upstream_retries_total", { method: "other" }) -
          valueOf(before.families, "accelerator_upstream_retries_total", { method: "other" }),
        10_000
      )
      assert.strictEqual(
        valueOf(after.families, "accelerator_http_request_duration_seconds_count", { route: "search", status_class: "2xx" }) -
          valueOf(before.families, "accelerator_http_request_duration_seconds_count", { route: "search", status_class: "2xx" }),
        10_000
      )
    }))
})

describe("label resolution", () => {
  it.effect("routes, status classes and circuits come from fixed sets", () =>
    Effect.sync(() => {
      assert.strictEqual(Metrics.routeOf("/search?q=drupal"), "search")
      assert.strictEqual(Metrics.routeOf("/content/123?x=1"), "content")
      assert.strictEqual(Metrics.routeOf("/content/"), "other")
      assert.strictEqual(Metrics.routeOf("/rpc/content.search"), "rpc")
      assert.strictEqual(Metrics.routeOf("/health/live"), "health_live")
      assert.strictEqual(Metrics.routeOf("/status.json"), "status")
      assert.strictEqual(Metrics.routeOf("/wp-admin"), "other")
      assert.strictEqual(Metrics.routeOf(undefined), "other")
      assert.strictEqual(Metrics.routeLabel("constructor"), "other")
      assert.strictEqual(Metrics.statusClassOf(204), "2xx")
      assert.strictEqual(Metrics.statusClassOf(599), "5xx")
      assert.strictEqual(Metrics.statusClassOf(600), "other")
      assert.strictEqual(Metrics.statusClassOf(99), "other")
      assert.strictEqual(Metrics.circuitLabel("redis"), "redis")
      assert.strictEqual(Metrics.circuitLabel("something"), "other")
    }))

  it.effect("the method label set refuses reserved, malformed and excess names", () =>
    Effect.sync(() => {
      const set = new Metrics.BoundedLabelSet(2, new Map([["other", { ok: [], error: [], retry: [] }]]), () => {})
      assert.strictEqual(set.add(["other", "bad name", "a".repeat(81), "x.y", "x.y", "z", "w"]), 2)
      assert.deepStrictEqual(set.values(), ["x.y", "z"])
      assert.strictEqual(set.resolve("w"), "other")
      assert.strictEqual(set.resolve("z"), "z")
    }))
})
