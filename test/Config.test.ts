/**
 * Keys of `src/Config.ts` whose defaults carry a rule: the per-site Redis prefix.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { RedisPrefix } from "../src/Config.js"

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
