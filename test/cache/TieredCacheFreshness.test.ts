/**
 * Freshness logic of the tiered cache on the memory tier under `TestClock` (time moves only with
 * `TestClock.adjust`; the hard timeout alone runs on the real clock, as a `Deadline` does):
 * stale-while-revalidate, fail-safe, soft and hard timeouts, negative
 * caching, TTL jitter, and the invalidation guard when no time passes at all. Real TTLs on Redis
 * and PostgreSQL are covered live in `TieredCache.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Option, TestClock } from "effect"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { assertHit, makeOrigin, OriginDown, policy, text } from "./tiered-fixtures.js"

/** A definite refusal by the origin (as Drupal's access denied or not found). */
class Refused {
  readonly _tag = "Refused"
}

/** A cache over a memory tier alone, in the test's scope, counting origin loads. */
const memoryOnly = Effect.gen(function*() {
  const memory = yield* MemoryTier.make()
  const counts = { originLoads: 0, results: [] as Array<boolean> }
  const cache = yield* TieredCache.make({
    memory,
    writeQueueCapacity: 16,
    writeBatchSize: 16,
    invalidationMemory: 100,
    hooks: { onOriginLoad: () => counts.originLoads++, onOriginResult: (ok) => counts.results.push(ok) }
  })
  return { cache, memory, counts }
})

/** A cache over a memory tier alone whose bus records what it publishes (invalidations on every instance). */
const withRecordingBus = Effect.gen(function*() {
  const published: Array<TieredCache.InvalidationMessage> = []
  const cache = yield* TieredCache.make({
    memory: yield* MemoryTier.make(),
    writeQueueCapacity: 16,
    writeBatchSize: 16,
    invalidationMemory: 100,
    bus: { publish: (message) => Effect.sync(() => void published.push(message)) }
  })
  return { cache, published }
})

/** Lets forked fibers that are not waiting on the clock run to their next suspension. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

const p = policy({ fresh: "10 seconds", grace: "60 seconds", softTimeout: "1 second", hardTimeout: "5 seconds" })
/** `p` with a hard timeout short enough to wait for on the real clock. */
const quick = policy({ fresh: "10 seconds", grace: "60 seconds", softTimeout: "1 second", hardTimeout: "50 millis" })

describe("TieredCache stale-while-revalidate", () => {
  it.scoped("a stale entry is answered at once and refreshed by exactly one background load", () =>
    Effect.gen(function*() {
      const { cache, counts } = yield* memoryOnly
      const origin = makeOrigin()
      assertHit(yield* cache.getOrSet("ns:k", origin.value("v1"), p), "MISS", "v1")
      assertHit(yield* cache.getOrSet("ns:k", origin.value("x"), p), "HIT-MEMORY", "v1")
      yield* TestClock.adjust("10 seconds")

      const refresh = yield* origin.gated("v2")
      const stale = yield* Effect.all(
        Array.from({ length: 200 }, () => cache.getOrSet("ns:k", refresh.lookup, p)),
        { concurrency: "unbounded" }
      )
      assert.isTrue(stale.every((hit) => hit.status === "STALE" && text(hit) === "v1"), "all 200 answered stale at once")
      yield* refresh.started
      yield* settle
      assert.strictEqual(origin.calls(), 2, "one refresh for 200 stale reads")
      // Still stale (and no second refresh) while the refresh runs.
      assertHit(yield* cache.getOrSet("ns:k", refresh.lookup, p), "STALE", "v1")
      yield* refresh.release
      yield* settle
      assertHit(yield* cache.getOrSet("ns:k", origin.value("x"), p), "HIT-MEMORY", "v2")
      assert.strictEqual(origin.calls(), 2)
      assert.strictEqual(counts.originLoads, 2)
    }))

  it.scoped("fail-safe: a failing origin leaves the stale entry answered within grace; past it the error surfaces", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      yield* cache.getOrSet("ns:k", origin.value("v1"), p)
      yield* TestClock.adjust("10 seconds")
      // Stale-while-revalidate: answered at once, the background refresh fails and is logged.
      assertHit(yield* cache.getOrSet("ns:k", origin.failing, p), "STALE", "v1")
      yield* settle
      assert.strictEqual(origin.calls(), 2)
      // Without stale-while-revalidate: the load fails, the stale entry is answered instead.
      const awaiting = { ...p, staleWhileRevalidate: false }
      assertHit(yield* cache.getOrSet("ns:k", origin.failing, awaiting), "STALE", "v1")
      assert.strictEqual(origin.calls(), 3)
      // Late in grace, still answered.
      yield* TestClock.adjust("59 seconds")
      assertHit(yield* cache.getOrSet("ns:k", origin.failing, awaiting), "STALE", "v1")
      // Past staleUntil: no usable entry, the origin's error reaches the caller.
      yield* TestClock.adjust("1 second")
      for (const policyOf of [p, awaiting]) {
        const exit = yield* Effect.exit(cache.getOrSet("ns:k", origin.failing, policyOf))
        assert.isTrue(Exit.isFailure(exit), "fails")
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error) && error.value instanceof OriginDown, "with the origin's error")
      }
    }))

  it.scoped("a refusal is never hidden behind a stale copy: the entry is deleted and the refusal answered", () =>
    Effect.gen(function*() {
      const { cache, memory } = yield* memoryOnly
      const origin = makeOrigin()
      const refusing = { ...p, isRefusal: (error: unknown) => error instanceof Refused }
      const refuse = Effect.fail(new Refused())
      // With stale-while-revalidate: the stale copy answers while the refresh runs; the refresh
      // is refused, so the entry goes, and the next read gets the refusal.
      yield* cache.getOrSet("ns:swr", origin.value("v1"), refusing)
      yield* TestClock.adjust("10 seconds")
      assertHit(yield* cache.getOrSet("ns:swr", refuse, refusing), "STALE", "v1")
      yield* settle
      assert.isTrue(Option.isNone(yield* memory.get("ns:swr")), "the refused entry is deleted")
      const after = yield* Effect.exit(cache.getOrSet("ns:swr", refuse, refusing))
      assert.isTrue(Exit.isFailure(after) && Option.getOrUndefined(Cause.failureOption(after.cause)) instanceof Refused)

      // Awaiting the load: the refusal itself is answered, not the stale copy.
      const awaiting = { ...refusing, staleWhileRevalidate: false }
      yield* cache.getOrSet("ns:await", origin.value("v1"), awaiting)
      yield* TestClock.adjust("10 seconds")
      const refused = yield* Effect.exit(cache.getOrSet("ns:await", refuse, awaiting))
      assert.isTrue(Exit.isFailure(refused) && Option.getOrUndefined(Cause.failureOption(refused.cause)) instanceof Refused)
      assert.isTrue(Option.isNone(yield* memory.get("ns:await")), "the refused entry is deleted")

      // Any other failure still falls back to the stale copy (fail-safe).
      yield* cache.getOrSet("ns:down", origin.value("v1"), awaiting)
      yield* TestClock.adjust("10 seconds")
      assertHit(yield* cache.getOrSet("ns:down", origin.failing, awaiting), "STALE", "v1")
    }))

  it.scoped("without stale-while-revalidate: a slow origin gives the stale entry after the soft timeout and is stored when done", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const awaiting = { ...p, staleWhileRevalidate: false }
      yield* cache.getOrSet("ns:k", origin.value("v1"), awaiting)
      yield* TestClock.adjust("11 seconds")

      const caller = yield* Effect.fork(cache.getOrSet("ns:k", origin.slow("v2", "3 seconds"), awaiting))
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(caller)), "waits for the load up to the soft timeout")
      yield* TestClock.adjust("1 second")
      assertHit(yield* Fiber.join(caller), "STALE", "v1")
      // The load goes on in the background and is stored when it completes.
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assertHit(yield* cache.getOrSet("ns:k", origin.value("x"), awaiting), "HIT-MEMORY", "v2")
      assert.strictEqual(origin.calls(), 2)

      // A fast origin is awaited and answered fresh.
      yield* TestClock.adjust("11 seconds")
      assertHit(yield* cache.getOrSet("ns:k", origin.value("v3"), awaiting), "MISS", "v3")
    }))

  it.scoped("hard timeout: LoadTimeout when no stale entry exists; nothing is stored", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const caller = yield* Effect.fork(cache.getOrSet("ns:k", origin.slow("late", "30 seconds"), quick))
      const exit = yield* Fiber.await(caller)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      assert.isTrue(Option.isSome(error) && error.value instanceof TieredCache.LoadTimeout, "LoadTimeout")
      assert.strictEqual(Option.isSome(error) && error.value instanceof TieredCache.LoadTimeout ? error.value.key : "", "ns:k")
      yield* TestClock.adjust("30 seconds")
      assert.isTrue(Option.isNone(yield* cache.get("ns:k")))
      assertHit(yield* cache.getOrSet("ns:k", origin.value("v"), p), "MISS", "v")
    }))

  it.scoped("every origin load reports its outcome: ok, failed, timed out", () =>
    Effect.gen(function*() {
      const { cache, counts } = yield* memoryOnly
      const origin = makeOrigin()
      yield* cache.getOrSet("ns:ok", origin.value("v"), p)
      yield* Effect.exit(cache.getOrSet("ns:failed", origin.failing, p))
      const slow = yield* Effect.fork(cache.getOrSet("ns:slow", origin.slow("late", "1 minute"), quick))
      yield* Fiber.await(slow)
      assert.deepStrictEqual(counts.results, [true, false, false])
      assert.strictEqual(counts.originLoads, 3)
    }))
})

describe("TieredCache lifetimes", () => {
  it.scoped("a not-found answer is kept for `negative` only, without grace", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const negative = { ...p, negative: Duration.seconds(2) }
      const first = yield* cache.getOrSet("ns:gone", origin.value("{}", { notFound: true }), negative)
      assert.strictEqual(first.status, "MISS")
      assert.strictEqual(first.entry.freshUntil - first.entry.createdAt, 2_000)
      assert.strictEqual(first.entry.staleUntil, first.entry.freshUntil)
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual((yield* cache.getOrSet("ns:gone", origin.value("{}", { notFound: true }), negative)).status, "HIT-MEMORY")
      assert.strictEqual(origin.calls(), 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* cache.getOrSet("ns:gone", origin.value("{}", { notFound: true }), negative)).status, "MISS")
      assert.strictEqual(origin.calls(), 2)

      // negative = 0: never cached.
      for (let i = 0; i < 2; i++) {
        assert.strictEqual((yield* cache.getOrSet("ns:never", origin.value("{}", { notFound: true }), p)).status, "MISS")
      }
      assert.strictEqual(origin.calls(), 4)
    }))

  it.scoped("with negativeGrace a denial is answered stale while one background load refreshes it; the same answer again is renewed without an invalidation", () =>
    Effect.gen(function*() {
      const { cache, published } = yield* withRecordingBus
      const origin = makeOrigin()
      const graced = { ...p, denied: Duration.seconds(2), negativeGrace: Duration.seconds(30) }
      const denial = () => origin.value("denied", { denied: true })
      const first = yield* cache.getOrSet("ns:d", denial(), graced)
      assert.strictEqual(first.status, "MISS")
      assert.strictEqual(first.entry.freshUntil - first.entry.createdAt, 2_000)
      assert.strictEqual(first.entry.staleUntil - first.entry.freshUntil, 30_000)
      yield* TestClock.adjust("3 seconds")
      // Stale: answered at once; one refresh in the background, however many callers.
      for (let i = 0; i < 3; i++) assertHit(yield* cache.getOrSet("ns:d", denial(), graced), "STALE", "denied")
      yield* settle
      assert.strictEqual(origin.calls(), 2)
      assert.deepStrictEqual(published, [], "the same denial is renewed, not deleted everywhere")
      assertHit(yield* cache.getOrSet("ns:d", denial(), graced), "HIT-MEMORY", "denied")
      // A refresh that finds the item readable replaces the denial.
      yield* TestClock.adjust("3 seconds")
      assertHit(yield* cache.getOrSet("ns:d", origin.value("readable"), graced), "STALE", "denied")
      yield* settle
      assertHit(yield* cache.getOrSet("ns:d", denial(), graced), "HIT-MEMORY", "readable")
      // Past the grace, a denial is gone.
      yield* TestClock.adjust("10 seconds")
      yield* cache.getOrSet("ns:d2", denial(), graced)
      yield* TestClock.adjust("33 seconds")
      assert.strictEqual((yield* cache.getOrSet("ns:d2", denial(), graced)).status, "MISS")
    }))

  it.scoped("a refresh that turns a value into a denial deletes it everywhere first (negativeGrace or not)", () =>
    Effect.gen(function*() {
      const { cache, published } = yield* withRecordingBus
      const origin = makeOrigin()
      const graced = { ...p, denied: Duration.seconds(2), negativeGrace: Duration.seconds(30) }
      yield* cache.getOrSet("ns:v", origin.value("content"), graced)
      yield* TestClock.adjust("11 seconds")
      assertHit(yield* cache.getOrSet("ns:v", origin.value("denied", { denied: true }), graced), "STALE", "content")
      yield* settle
      assert.deepStrictEqual(published, [{ keys: ["ns:v"] }], "the copy was deleted on every instance")
      assertHit(yield* cache.getOrSet("ns:v", origin.value("content"), graced), "HIT-MEMORY", "denied")
    }))

  it.scoped("a not-found answer (negative 0) to the refresh of a stale entry removes that entry", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const awaiting = { ...p, staleWhileRevalidate: false }
      yield* cache.getOrSet("ns:k", origin.value("was there"), awaiting)
      yield* TestClock.adjust("11 seconds")
      const hit = yield* cache.getOrSet("ns:k", origin.value("{}", { notFound: true }), awaiting)
      assert.strictEqual(hit.status, "MISS")
      assert.isTrue(Option.isNone(yield* cache.get("ns:k")), "the stale copy is gone, not served on")
    }))

  it.scoped("fresh TTLs are jittered within ±jitter; grace is added unjittered", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const jittered = { ...p, jitter: 0.2 }
      const lifetimes: Array<number> = []
      for (let i = 0; i < 200; i++) {
        const { entry } = yield* cache.getOrSet(`ns:${i}`, origin.value("v"), jittered)
        lifetimes.push(entry.freshUntil - entry.createdAt)
        assert.strictEqual(entry.staleUntil - entry.freshUntil, 60_000)
      }
      assert.isAtLeast(Math.min(...lifetimes), 8_000)
      assert.isAtMost(Math.max(...lifetimes), 12_000)
      // Spread over the range, not one value (200 uniform draws: both bands are hit).
      assert.isBelow(Math.min(...lifetimes), 9_500)
      assert.isAbove(Math.max(...lifetimes), 10_500)
    }))
})

describe("TieredCache invalidation guard, time standing still", () => {
  it.scoped("a value loaded after an invalidation in the same millisecond is stored", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const start = yield* Clock.currentTimeMillis
      yield* cache.getOrSet("ns:k", origin.value("v1", { tags: ["t"] }), p)
      yield* cache.invalidateTags(["t"])
      assertHit(yield* cache.getOrSet("ns:k", origin.value("v2", { tags: ["t"] }), p), "MISS", "v2")
      assertHit(yield* cache.getOrSet("ns:k", origin.value("v3", { tags: ["t"] }), p), "HIT-MEMORY", "v2")
      yield* cache.delete(["ns:k"])
      yield* cache.set("ns:k", { value: new TextEncoder().encode("v4"), contentType: "text/plain", tags: ["t"] }, p)
      assertHit(Option.getOrThrow(yield* cache.get("ns:k")), "HIT-MEMORY", "v4")
      assert.strictEqual(yield* Clock.currentTimeMillis, start, "no time passed")
    }))

  it.scoped("a caller joining a load that an invalidation overtook runs a load of its own", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      const old = yield* origin.gated("old", ["t"])
      const first = yield* Effect.fork(cache.getOrSet("ns:k", old.lookup, p))
      yield* old.started
      // Joins the load in flight (concurrent with it, not overtaken for this caller).
      const concurrent = yield* Effect.fork(cache.getOrSet("ns:k", origin.value("unused", { tags: ["t"] }), p))
      yield* settle
      yield* cache.invalidateTags(["t"])
      // Starts after the invalidation returned, while the old load is still in flight.
      const later = yield* Effect.fork(cache.getOrSet("ns:k", origin.value("new", { tags: ["t"] }), p))
      yield* settle
      assert.strictEqual(origin.calls(), 1, "both joined the load in flight")
      yield* old.release
      assertHit(yield* Fiber.join(first), "MISS", "old", "the load's own caller")
      assertHit(yield* Fiber.join(concurrent), "MISS", "old", "a caller concurrent with the invalidation")
      assertHit(yield* Fiber.join(later), "MISS", "new", "a caller that came after the invalidation never gets the old value")
      assert.strictEqual(origin.calls(), 2)
      assertHit(Option.getOrThrow(yield* cache.get("ns:k")), "HIT-MEMORY", "new")
    }))

  it.scoped("a background refresh overtaken by an invalidation does not put the old value back", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      yield* cache.getOrSet("ns:k", origin.value("v1", { tags: ["t"] }), p)
      yield* TestClock.adjust("11 seconds")
      const refresh = yield* origin.gated("refreshed-before-invalidation", ["t"])
      assertHit(yield* cache.getOrSet("ns:k", refresh.lookup, p), "STALE", "v1")
      yield* refresh.started
      yield* cache.invalidateTags(["t"])
      yield* refresh.release
      yield* settle
      assert.isTrue(Option.isNone(yield* cache.get("ns:k")))
    }))

  it.scoped("the guard's memory is bounded; a load older than what it remembers is not stored", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly // invalidationMemory: 100
      const origin = makeOrigin()
      const slow = yield* origin.gated("old", ["unrelated"])
      const caller = yield* Effect.fork(cache.getOrSet("ns:k", slow.lookup, p))
      yield* slow.started
      for (let i = 0; i < 150; i++) yield* cache.invalidateTags([`other-${i}`])
      yield* slow.release
      assertHit(yield* Fiber.join(caller), "MISS", "old")
      assert.isTrue(Option.isNone(yield* cache.get("ns:k")), "not stored: the guard forgot what happened meanwhile")
      // A load that starts now is stored again.
      assertHit(yield* cache.getOrSet("ns:k", origin.value("new"), p), "MISS", "new")
      assertHit(Option.getOrThrow(yield* cache.get("ns:k")), "HIT-MEMORY", "new")
    }))
})

describe("TieredCache remote invalidations", () => {
  it.scoped("applyRemote drops keys, tags and namespaces from memory, ignores an invalid namespace, never fails", () =>
    Effect.gen(function*() {
      const { cache } = yield* memoryOnly
      const origin = makeOrigin()
      for (const [key, tags] of [["a:1", ["t1"]], ["a:2", []], ["b:1", []], ["c:1", ["t2"]]] as const) {
        yield* cache.getOrSet(key, origin.value(key, { tags }), p)
      }
      const present = Effect.map(
        Effect.forEach(["a:1", "a:2", "b:1", "c:1"], (k) => cache.get(k)),
        (found) => ["a:1", "a:2", "b:1", "c:1"].filter((_, i) => Option.isSome(found[i]!))
      )
      yield* cache.applyRemote({ namespace: "bad:ns" })
      yield* cache.applyRemote({ namespace: "" })
      assert.deepStrictEqual(yield* present, ["a:1", "a:2", "b:1", "c:1"])
      yield* cache.applyRemote({ tags: ["t1"] })
      assert.deepStrictEqual(yield* present, ["a:2", "b:1", "c:1"])
      yield* cache.applyRemote({ keys: ["b:1"], namespace: "c" })
      assert.deepStrictEqual(yield* present, ["a:2"])
    }))
})

describe("TieredCache per-tier TTL", () => {
  it.scoped("a memory cap shorter than the policy's times drops the memory copy at the cap", () =>
    Effect.gen(function*() {
      const { cache, memory } = yield* memoryOnly
      const origin = makeOrigin()
      const capped = { ...p, tierTtl: { memory: Duration.seconds(3) } }
      assertHit(yield* cache.getOrSet("ns:capped", origin.value("v1"), capped), "MISS", "v1")
      const stored = Option.getOrThrow(yield* memory.get("ns:capped"))
      const now = yield* Clock.currentTimeMillis
      assert.strictEqual(stored.staleUntil, now + 3_000)
      assert.isAtMost(stored.freshUntil, now + 3_000)
      yield* TestClock.adjust("3 seconds")
      assertHit(yield* cache.getOrSet("ns:capped", origin.value("v2"), capped), "MISS", "v2")
      assert.strictEqual(origin.calls(), 2, "the memory copy expired at the cap, not at the policy's fresh time")
    }))
})
