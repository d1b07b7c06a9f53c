/**
 * Keys of `src/Config.ts` whose defaults carry a rule: the per-site Redis prefix and the demo guard.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { ListenHost, RedisPrefix } from "../src/Config.js"

const prefixWith = (env: Record<string, string>) =>
  Effect.withConfigProvider(RedisPrefix, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("RedisPrefix", () => {
  it.effect("by default it is derived from the site: two sites never share a prefix, one site always gets the same", () =>
    Effect.gen(function*() {
      const a = yield* prefixWith({ DRUPAL_URL: "https://a.example.com" })
      const b = yield* prefixWith({ DRUPAL_URL: "https://b.example.com" })
      const subsite = yield* prefixWith({ DRUPAL_URL: "https://a.example.com/fr" })
      assert.match(a, /^da:[0-9a-f]{12}:$/)
      assert.strictEqual(new Set([a, b, subsite]).size, 3)
      assert.strictEqual(yield* prefixWith({ DRUPAL_URL: "https://a.example.com/" }), a, "a trailing slash is the same site")
      assert.strictEqual(yield* prefixWith({}), "da:demo:", "the built-in simulator")
    }))

  it.effect("CACHE_REDIS_PREFIX, when set, is taken as is", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* prefixWith({ DRUPAL_URL: "https://a.example.com", CACHE_REDIS_PREFIX: "shop:" }), "shop:")
    }))
})

describe("ListenHost (the demo guard)", () => {
  const hostWith = (env: Record<string, string>) =>
    Effect.either(Effect.withConfigProvider(ListenHost, ConfigProvider.fromMap(new Map(Object.entries(env)))))

  it.effect("without DRUPAL_URL the demo binds loopback, and a non-loopback HOST is refused unless DEMO_PUBLIC=true", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* hostWith({}), Either.right("127.0.0.1"))
      assert.deepStrictEqual(yield* hostWith({ HOST: "::1" }), Either.right("::1"))
      for (const host of ["0.0.0.0", "::", "10.0.0.5"]) {
        const refused = yield* hostWith({ HOST: host })
        assert.isTrue(Either.isLeft(refused), host)
        if (Either.isLeft(refused)) assert.include(String(refused.left), "DEMO_PUBLIC=true")
      }
      assert.deepStrictEqual(yield* hostWith({ HOST: "0.0.0.0", DEMO_PUBLIC: "true" }), Either.right("0.0.0.0"))
    }))

  it.effect("with DRUPAL_URL it binds HOST, by default every interface", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* hostWith({ DRUPAL_URL: "https://site.example" }), Either.right("0.0.0.0"))
      assert.deepStrictEqual(yield* hostWith({ DRUPAL_URL: "https://site.example", HOST: "10.0.0.5" }), Either.right("10.0.0.5"))
    }))
})
