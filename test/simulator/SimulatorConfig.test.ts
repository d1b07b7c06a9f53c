import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import { Simulator } from "../../src/simulator/Simulator.js"
import * as SimulatorLayer from "../../src/simulator/Simulator.js"
import { SimulatorConfig } from "../../src/simulator/SimulatorConfig.js"
import { post } from "./support.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("SimulatorConfig", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      const config = yield* SimulatorConfig.pipe(withEnv({}))
      assert.strictEqual(config.port, 8090)
      assert.strictEqual(config.host, "127.0.0.1")
      assert.strictEqual(config.corpusSize, 10_000)
      assert.strictEqual(config.largeShare, 0.01)
      assert.isUndefined(config.hugeItemId)
      assert.deepStrictEqual(config.switches, {
        moduleVersion: "2.0.5",
        accessContext: true,
        missingItem: "item"
      })
      assert.deepStrictEqual(config.faults?.latency, { kind: "none" })
      assert.deepStrictEqual(config.faults?.errorRates, {})
      // The cost model is on by default (npm start, benchmarks, end-to-end specs).
      assert.deepStrictEqual(config.cost, {
        enabled: true,
        workers: 16,
        queueMax: 256,
        bootstrapMeanMs: 30,
        bootstrapP99Ms: 120,
        itemMs: 5,
        searchMs: 25,
        seed: 1
      })
    }))

  it.effect("reads SIM_* keys", () =>
    Effect.gen(function*() {
      const config = yield* SimulatorConfig.pipe(withEnv({
        SIM_PORT: "0",
        SIM_CORPUS_SIZE: "250",
        SIM_LATENCY: "lognormal",
        SIM_LATENCY_MEAN_MS: "40",
        SIM_ERROR_RATE: "0.1",
        SIM_ERROR_RATES: "content.search=1, content.get_tutorial=0.25",
        SIM_ERROR_KIND: "http503",
        SIM_MODULE_VERSION: "2.0.0",
        SIM_MISSING_ITEM: "parse",
        SIM_ACCESS_CONTEXT: "off",
        SIM_HUGE_ITEM_ID: "3",
        SIM_SITE_URL: "https://drupalize.example/",
        SIM_COST: "off",
        SIM_WORKERS: "4",
        SIM_QUEUE_MAX: "8",
        SIM_ITEM_MS: "20"
      }))
      assert.strictEqual(config.cost?.enabled, false)
      assert.strictEqual(config.cost?.workers, 4)
      assert.strictEqual(config.cost?.queueMax, 8)
      assert.strictEqual(config.cost?.itemMs, 20)
      assert.strictEqual(config.port, 0)
      assert.strictEqual(config.corpusSize, 250)
      assert.deepStrictEqual(config.faults?.latency, { kind: "lognormal", meanMs: 40, p99Ms: 200 })
      assert.deepStrictEqual(config.faults?.errorRates, { "*": 0.1, "content.search": 1, "content.get_tutorial": 0.25 })
      assert.strictEqual(config.faults?.errorKind, "http503")
      assert.strictEqual(config.switches?.moduleVersion, "2.0.0")
      assert.strictEqual(config.switches?.missingItem, "parse")
      assert.strictEqual(config.switches?.accessContext, false)
      assert.strictEqual(config.hugeItemId, 3)
      assert.strictEqual(config.siteUrl, "https://drupalize.example")
    }))

  it.effect("rejects bad values", () =>
    Effect.gen(function*() {
      for (const env of [{ SIM_ERROR_RATES: "content.search" }, { SIM_HANG_RATE: "1.5" }, { SIM_LATENCY: "gaussian" }, { SIM_PORT: "70000" }, { SIM_MODULE_VERSION: "3.0.0" }, { SIM_WORKERS: "0" }, { SIM_COST: "maybe" }]) {
        const result = yield* Effect.either(SimulatorConfig.pipe(withEnv(env)))
        assert.isTrue(Either.isLeft(result), JSON.stringify(env))
      }
    }))

  it.scopedLive("layerConfig starts a simulator from SIM_* keys, with overrides on top", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(SimulatorLayer.layerConfig({ corpusSize: 120 })).pipe(
        withEnv({ SIM_PORT: "0", SIM_CORPUS_SIZE: "5000", SIM_MODULE_VERSION: "2.0.4" })
      )
      const sim = yield* Effect.provide(Simulator, context)
      assert.strictEqual(sim.corpus.size, 120)
      assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const reply = yield* post(sim, "{oops")
      assert.strictEqual(reply.status, 500)
      assert.include(reply.headers.get("content-type") ?? "", "text/html")
    }))
})
