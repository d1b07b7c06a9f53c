import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer } from "effect"
import * as CacheConfig from "../../src/cache/CacheConfig.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("CacheConfig", () => {
  it.effect("every key has its documented default", () =>
    Effect.gen(function*() {
      const memory = yield* CacheConfig.MemoryTierConfig
      assert.deepStrictEqual(memory, { maxBytes: 134_217_728, maxEntries: 100_000, maxValueBytes: 1_048_576, largeMaxBytes: 134_217_728, largeMaxValueBytes: 33_554_432 })
      const redis = yield* CacheConfig.RedisTierConfig
      assert.strictEqual(redis.prefix, "da:demo:", "the embedded demo site's prefix (per site since the security issue)")
      assert.strictEqual(redis.compressAbove, 16_384)
      assert.strictEqual(redis.pageSize, 500)
      assert.strictEqual(Duration.toMillis(redis.timeout!), 500)
      assert.strictEqual(Duration.toMillis(redis.maintenanceTimeout!), 30_000)
      const pg = yield* CacheConfig.PostgresTierConfig
      assert.strictEqual(pg.schema, "public")
      assert.strictEqual(pg.table, "accelerator_cache")
      assert.strictEqual(pg.unlogged, true)
      assert.strictEqual(Duration.toMillis(pg.timeout!), 1_000)
      assert.strictEqual(Duration.toMillis(pg.sweepInterval!), 60_000)
      assert.strictEqual(pg.sweepBatchSize, 1_000)
      assert.strictEqual(Duration.toMillis((pg.breaker as { cooldown: Duration.Duration }).cooldown), 5_000)
    }).pipe(withEnv({})))

  it.effect("keys are read and validated", () =>
    Effect.gen(function*() {
      const pg = yield* CacheConfig.PostgresTierConfig.pipe(
        withEnv({ CACHE_PG_UNLOGGED: "false", CACHE_PG_TABLE: "my_cache", CACHE_COMPRESS_ABOVE_BYTES: "0" })
      )
      assert.strictEqual(pg.unlogged, false)
      assert.strictEqual(pg.table, "my_cache")
      assert.strictEqual(pg.compressAbove, 0)
      const badTable = yield* Effect.either(CacheConfig.PostgresTierConfig.pipe(withEnv({ CACHE_PG_TABLE: "Robert'); DROP" })))
      assert.isTrue(Either.isLeft(badTable))
      const badBytes = yield* Effect.either(CacheConfig.MemoryTierConfig.pipe(withEnv({ CACHE_MEMORY_MAX_BYTES: "0" })))
      assert.isTrue(Either.isLeft(badBytes))
    }))

  it.effect("MemoryTier.layerConfig builds the tier from the keys", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.MemoryTier
      assert.strictEqual(tier.name, "memory")
      // CACHE_MEMORY_MAX_ENTRIES=5 holds: a sixth entry evicts the first.
      for (let i = 0; i < 6; i++) {
        const now = Date.now()
        yield* tier.set(`t:${i}`, {
          value: new Uint8Array([i]),
          contentType: "application/json",
          createdAt: now,
          freshUntil: now + 60_000,
          staleUntil: now + 60_000,
          tags: []
        })
      }
      assert.strictEqual(tier.stats().entries, 5)
    }).pipe(
      Effect.provide(MemoryTier.layerConfig().pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["CACHE_MEMORY_MAX_ENTRIES", "5"]]))))
      ))
    ))
})
