import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { findFreePort } from "../support/services.js"
import { startGateway } from "../http/fixtures.js"

describe("GET /health with Redis and PostgreSQL configured", () => {
  it.scopedLive("reports every configured dependency ready against the real servers", () =>
    Effect.gen(function*() {
      const { request } = yield* startGateway({ REDIS_URL: inject("redisUrl"), DATABASE_URL: inject("databaseUrl") })
      const health = yield* Effect.promise(() => request("/health"))
      assert.strictEqual(health.status, 200, health.text)
      assert.strictEqual(health.body.status, "ok")
      assert.deepStrictEqual(
        health.body.dependencies.map((d: { name: string; ready: boolean }) => [d.name, d.ready]),
        [["drupal", true], ["redis", true], ["postgres", true]]
      )
    }))

  it.scopedLive("answers 503 naming the dependency that is down, while the gateway keeps running", () =>
    Effect.gen(function*() {
      const deadPort = yield* Effect.promise(() => findFreePort())
      const { request } = yield* startGateway({
        REDIS_URL: `redis://127.0.0.1:${deadPort}`,
        DATABASE_URL: inject("databaseUrl"),
        HEALTH_PROBE_TIMEOUT_MS: "500"
      })
      const health = yield* Effect.promise(() => request("/health"))
      assert.strictEqual(health.status, 503)
      assert.strictEqual(health.body.status, "unavailable")
      const redis = health.body.dependencies.find((d: { name: string }) => d.name === "redis")
      assert.isFalse(redis.ready)
      assert.isString(redis.detail)
      const live = yield* Effect.promise(() => request("/health/live"))
      assert.strictEqual(live.status, 200)
      const search = yield* Effect.promise(() => request("/search?q=views"))
      assert.strictEqual(search.status, 200, "a dead Redis does not fail requests")
    }))
})
