/**
 * Cross-instance invalidation: three TieredCache instances (separate builds: each its own memory
 * tier, connections and bus subscriber) over one Redis and one PostgreSQL, with the Redis pub/sub
 * bus, and over PostgreSQL alone with the LISTEN/NOTIFY bus. Measures the propagation delay,
 * checks split, own and malformed messages, and recovery after the bus server restarts.
 *
 * Measured propagation: time from `invalidateTags` returning on A to the last of B and C having
 * dropped the entry from memory (taken in B's and C's `onRemoteApplied` hook, same process clock),
 * 100 rounds per run, six runs of the whole `test/cache` folder on 2 vCPUs (other spec files
 * compete for the CPU), redis-server 7.0 and PostgreSQL 15 on loopback. Ranges over the runs
 * (the last column over four of them):
 *
 * | bus | p50 | p99 | max | from the call of `invalidateTags` (max) |
 * | --- | --- | --- | --- | --- |
 * | Redis pub/sub | 0.75–0.92 ms | 2.6–7.1 ms | 3.5–19.3 ms | 16.8–25.7 ms |
 * | PostgreSQL LISTEN/NOTIFY | 0–0.6 ms | 1.2–3.4 ms | 1.7–13.5 ms | 6.8–12.6 ms |
 *
 * On loopback the bound is therefore tens of milliseconds after `invalidateTags` returns; across
 * real hosts expect about one more network hop. It holds only while the subscription is up: after an
 * outage the instance drops its memory once it is subscribed again (see `CacheBus.ts`).
 *
 * The delay can be 0: the message is published as the last step of `invalidateTags`, and another
 * instance may have applied it before the caller resumes. The specs assert a generous bound
 * ({@link PROPAGATION_BOUND_MS}) to catch a bus that stopped working, not to measure speed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Schedule } from "effect"
import { inject } from "vitest"
import { MAX_MESSAGE_BYTES, parseMessage, splitMessage } from "../../src/cache/CacheBus.js"
import type { InvalidationMessage } from "../../src/cache/TieredCache.js"
import { postgresServer, redisServer } from "../support/services.js"
import {
  assertHit,
  eventually,
  freshNamespace,
  instance,
  type Instance,
  type InstanceOptions,
  isolation,
  makeOrigin,
  policy,
  redisAdapter,
  sqlClient,
  text
} from "./tiered-fixtures.js"

const redisUrl = inject("redisUrl")
const databaseUrl = inject("databaseUrl")

/** Rounds of the propagation measurement, per bus. */
const ROUNDS = 100

/** The propagation bound the README documents; the worst measured round is an order of magnitude below. */
const PROPAGATION_BOUND_MS = 250

type Kind = "redis" | "postgres"

/** Three instances sharing the servers (PostgreSQL alone for the PostgreSQL bus) and one channel. */
const trio = (kind: Kind) =>
  Effect.gen(function*() {
    const iso = yield* isolation(kind === "redis" ? { redisUrl, databaseUrl } : { databaseUrl })
    const channel = kind === "redis" ? `spec:bus:${freshNamespace("c")}` : `bus_${freshNamespace("c")}`
    const options: InstanceOptions = {
      ...(kind === "redis" ? { redisUrl } : {}),
      databaseUrl,
      ...iso,
      bus: { kind, url: kind === "redis" ? redisUrl : databaseUrl, channel }
    }
    const [a, b, c] = [yield* instance(options), yield* instance(options), yield* instance(options)]
    return { a, b, c, channel }
  })

/** Publishes `payload` on the bus channel as is, past the bus (a foreign or broken publisher). */
const publishRaw = (kind: Kind, channel: string) =>
  Effect.gen(function*() {
    if (kind === "redis") {
      const redis = yield* redisAdapter(redisUrl, "raw-publisher")
      return (payload: string) => Effect.asVoid(redis.use("publish", (c) => c.publish(channel, payload)))
    }
    const sql = yield* sqlClient(databaseUrl)
    return (payload: string) => Effect.asVoid(Effect.orDie(sql`SELECT pg_notify(${channel}, ${payload})`))
  })

/** Completes when `inst` has applied a remote message for which `matches` holds. */
const appliedWhere = (inst: Instance, matches: (message: InvalidationMessage) => boolean) =>
  Effect.gen(function*() {
    const done = yield* Deferred.make<number>()
    const stop = inst.onApplied((message, at) => {
      if (matches(message)) Deferred.unsafeDone(done, Effect.succeed(at))
    })
    return Deferred.await(done).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no such message applied within 10 s") }),
      Effect.ensuring(Effect.sync(stop))
    )
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!

const propagation = (kind: Kind) =>
  Effect.gen(function*() {
    const { a, b, c } = yield* trio(kind)
    const origin = makeOrigin()
    const below = kind === "redis" ? "HIT-REDIS" : "HIT-POSTGRES"
    const delays: Array<number> = []
    const sinceCall: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      const key = `prop:${round}`
      const tag = `prop-${round}`
      assertHit(yield* a.cache.getOrSet(key, origin.value("old", { tags: [tag] }), policy()), "MISS", "old", "a loads")
      yield* a.cache.flush
      assertHit(yield* b.cache.getOrSet(key, origin.value("unused"), policy()), below, "old", "b backfills")
      assertHit(yield* c.cache.getOrSet(key, origin.value("unused"), policy()), below, "old", "c backfills")
      for (const inst of [a, b, c]) assert.strictEqual(text(yield* inst.memory.get(key)), "old", "all three hold it in memory")

      const waits = [yield* appliedWhere(b, (m) => m.tags?.includes(tag) === true), yield* appliedWhere(c, (m) => m.tags?.includes(tag) === true)]
      // Readers on b and c from before the invalidation until after they applied it: an old
      // answer is only allowed from a read that began before its instance applied the message.
      const applied = new Map<Instance, number>()
      const oldReads: Array<{ readonly inst: Instance; readonly startedAt: number }> = []
      const reader = (inst: Instance) =>
        Effect.gen(function*() {
          let after = 0
          while (after < 3) {
            if (applied.has(inst)) after++
            const startedAt = performance.now()
            if (text(yield* inst.cache.get(key)) === "old") oldReads.push({ inst, startedAt })
            yield* Effect.sleep("1 millis")
          }
        })
      const readers = yield* Effect.fork(Effect.all([reader(b), reader(c)], { concurrency: 2 }))
      const called = performance.now()
      yield* a.cache.invalidateTags([tag])
      const returned = performance.now()
      assert.isTrue(Option.isNone(yield* a.memory.get(key)), "a dropped it before invalidateTags returned")
      const [atB, atC] = yield* Effect.all(waits.map((wait, i) => Effect.tap(wait, (at) => Effect.sync(() => applied.set([b, c][i]!, at)))), {
        concurrency: 2
      })
      yield* Fiber.join(readers)
      const delay = Math.max(0, Math.max(atB!, atC!) - returned)
      delays.push(delay)
      sinceCall.push(Math.max(atB!, atC!) - called)
      assert.isBelow(delay, PROPAGATION_BOUND_MS, `round ${round}: propagated within the bound`)
      for (const { inst, startedAt } of oldReads) {
        assert.isBelow(startedAt, applied.get(inst)!, "an old answer only from a read begun before the message was applied")
      }
      // After the bound nobody answers the old value, from any tier; the next get is a MISS that reloads.
      for (const inst of [a, b, c]) assert.isTrue(Option.isNone(yield* inst.cache.get(key)), "gone everywhere")
      assertHit(yield* b.cache.getOrSet(key, origin.value("new", { tags: [tag] }), policy()), "MISS", "new", "reloaded")
    }
    assert.strictEqual(origin.calls(), 2 * ROUNDS)
    const summary = (values: ReadonlyArray<number>) => {
      const sorted = [...values].sort((x, y) => x - y)
      return `p50 ${percentile(sorted, 0.5).toFixed(2)} p99 ${percentile(sorted, 0.99).toFixed(2)} max ${sorted[sorted.length - 1]!.toFixed(2)}`
    }
    console.log(
      `[propagation] ${kind} bus, ${ROUNDS} rounds, ms after invalidateTags returned: ${summary(delays)}; ` +
        `ms after it was called: ${summary(sinceCall)}`
    )
  })

/** Messages split for the bus are each applied; together they carry everything. */
const splitApplied = (kind: Kind) =>
  Effect.gen(function*() {
    const { a, b } = yield* trio(kind)
    const origin = makeOrigin()
    // PostgreSQL: 600 tags of ~45 bytes (~27 KB, over the 8,000-byte NOTIFY limit). Redis:
    // 8,000 keys of ~40 bytes (~330 KB, over MAX_MESSAGE_BYTES).
    const count = kind === "redis" ? 8_000 : 600
    const names = Array.from({ length: count }, (_, i) => `split:${i}:${"x".repeat(30)}`)
    const first = names[0]!
    const last = names[count - 1]!
    for (const name of [first, last]) {
      yield* b.cache.getOrSet(name, origin.value("v", { tags: [`tag-${name}`] }), policy())
      assert.isTrue(Option.isSome(yield* b.memory.get(name)))
    }
    const seen = new Set<string>()
    let messages = 0
    const everything = yield* Deferred.make<void>()
    const stop = b.onApplied((message) => {
      messages++
      for (const value of (kind === "redis" ? message.keys : message.tags) ?? []) seen.add(value)
      if (seen.size === count) Deferred.unsafeDone(everything, Effect.void)
    })
    if (kind === "redis") yield* a.cache.delete(names)
    else yield* a.cache.invalidateTags(names.map((name) => `tag-${name}`))
    yield* Deferred.await(everything).pipe(Effect.timeout("10 seconds"))
    stop()
    assert.isAtLeast(messages, 2, "split into several messages")
    for (const name of [first, last]) assert.isTrue(Option.isNone(yield* b.memory.get(name)), "both ends applied")
  })

/** An instance never applies its own messages. */
const ownIgnored = (kind: Kind) =>
  Effect.gen(function*() {
    const { a, b } = yield* trio(kind)
    const heardByB = yield* appliedWhere(b, (m) => m.tags?.includes("own-tag") === true)
    const barrier = yield* appliedWhere(a, (m) => m.keys?.includes("barrier:k") === true)
    yield* a.cache.invalidateTags(["own-tag"])
    // b heard a; b's answer reaches a after a's own message would have (one ordered channel).
    yield* heardByB
    yield* b.cache.delete(["barrier:k"])
    yield* barrier
    assert.deepStrictEqual(a.stats.applied.map((x) => x.message), [{ keys: ["barrier:k"] }])
    assert.deepStrictEqual(b.stats.applied.map((x) => x.message), [{ tags: ["own-tag"] }])
  })

/** Malformed messages are ignored; a valid one after them is applied. */
const malformedIgnored = (kind: Kind) =>
  Effect.gen(function*() {
    const { b, channel } = yield* trio(kind)
    const publish = yield* publishRaw(kind, channel)
    const origin = makeOrigin()
    yield* b.cache.getOrSet("mal:k", origin.value("kept", { tags: ["mal-t"] }), policy())
    const payloads = [
      "not json",
      "",
      "null",
      "[1,2]",
      "{}",
      JSON.stringify({ v: 2, from: "foreign", keys: ["mal:k"] }),
      JSON.stringify({ v: 1, keys: ["mal:k"] }),
      JSON.stringify({ v: 1, from: "foreign", keys: ["mal:k", 5] }),
      JSON.stringify({ v: 1, from: "foreign", tags: "mal-t" }),
      JSON.stringify({ v: 1, from: "foreign", keys: ["mal:k"], namespace: "mal:k" }),
      JSON.stringify({ v: 1, from: "foreign", namespace: "" }),
      JSON.stringify({ v: 1, from: b.id, keys: ["mal:k"] }),
      ...(kind === "redis" ? [JSON.stringify({ v: 1, from: "foreign", keys: ["mal:k"], pad: "x".repeat(MAX_MESSAGE_BYTES) })] : [])
    ]
    const valid = yield* appliedWhere(b, (m) => m.keys?.includes("mal:barrier") === true)
    for (const payload of payloads) yield* publish(payload)
    yield* publish(JSON.stringify({ v: 1, from: "foreign", keys: ["mal:barrier"] }))
    yield* valid
    assert.deepStrictEqual(b.stats.applied.map((x) => x.message), [{ keys: ["mal:barrier"] }], "only the valid message")
    assertHit(yield* b.cache.getOrSet("mal:k", origin.value("unused"), policy()), "HIT-MEMORY", "kept")
  })

describe("CacheBus message format", () => {
  it("splits a large message into parts within the limit that parse back to all of it", () => {
    const keys = Array.from({ length: 1_000 }, (_, i) => `ns:${i}:ünïcødé`)
    const tags = Array.from({ length: 300 }, (_, i) => `tag-${i}`)
    const parts = splitMessage({ keys, tags, namespace: "ns" }, "me", 7_000)
    assert.isAbove(parts.length, 3)
    for (const part of parts) assert.isAtMost(Buffer.byteLength(part), 7_000)
    const parsed = parts.map((part) => parseMessage(part, "someone else")!)
    assert.deepStrictEqual(parsed.flatMap((m) => m.keys ?? []), keys)
    assert.deepStrictEqual(parsed.flatMap((m) => m.tags ?? []), tags)
    assert.deepStrictEqual(parsed.flatMap((m) => (m.namespace === undefined ? [] : [m.namespace])), ["ns"])
    // Small messages go whole; an instance ignores its own.
    const [whole] = splitMessage({ keys: ["a:1"] }, "me", 7_000)
    assert.deepStrictEqual(parseMessage(whole!, "other"), { keys: ["a:1"] })
    assert.isUndefined(parseMessage(whole!, "me"))
  })
})

describe("CacheBus over Redis pub/sub, three instances", () => {
  it.scopedLive("invalidateTags on one instance reaches the others within the bound; the old value is never answered after it", () =>
    propagation("redis"), 60_000)
  it.scopedLive("a message larger than the limit is split and every part applied", () => splitApplied("redis"))
  it.scopedLive("an instance ignores its own messages", () => ownIgnored("redis"))
  it.scopedLive("malformed messages are ignored", () => malformedIgnored("redis"))
})

describe("CacheBus over PostgreSQL LISTEN/NOTIFY (no Redis), three instances", () => {
  it.scopedLive("invalidateTags on one instance reaches the others within the bound; the old value is never answered after it", () =>
    propagation("postgres"), 60_000)
  it.scopedLive("a message too large for one NOTIFY is split and every part applied", () => splitApplied("postgres"))
  it.scopedLive("an instance ignores its own messages", () => ownIgnored("postgres"))
  it.scopedLive("malformed messages are ignored", () => malformedIgnored("postgres"))
})

describe("CacheBus outage", () => {
  /** a and b over a private server the bus uses; returns them after b holds `held` in memory. */
  const outage = (kind: Kind) =>
    Effect.gen(function*() {
      const server = kind === "redis" ? yield* redisServer() : yield* postgresServer()
      const channel = "bus"
      const options: InstanceOptions = kind === "redis"
        ? { redisUrl: server.url, prefix: "da:", bus: { kind, url: server.url, channel }, redisTier: { breaker: { cooldown: "300 millis" } } }
        : { databaseUrl: server.url, bus: { kind, url: server.url, channel }, postgresTier: { breaker: { cooldown: "300 millis" } } }
      const a = yield* instance(options)
      const b = yield* instance(options)
      const origin = makeOrigin()
      yield* b.cache.getOrSet("held:k", origin.value("held"), policy())
      assert.isTrue(Option.isSome(yield* b.memory.get("held:k")))
      assert.strictEqual(b.stats.memoryDropped, 0, "no drop at start")

      yield* Effect.promise(() => server.kill())
      yield* Effect.promise(() => server.restart())
      // Both subscriptions come back; each instance drops its memory once it is subscribed again.
      yield* Effect.all([a.dropped(1), b.dropped(1)], { concurrency: 2 }).pipe(Effect.timeout("20 seconds"))
      assert.isTrue(Option.isNone(yield* b.memory.get("held:k")), "memory dropped after the outage")

      // Invalidations published after the restart are heard again.
      // a's command connection reconnects on its own schedule, maybe after the bus did: wait for it.
      if (kind === "redis") {
        yield* a.redisAdapter!.use("ping", (c) => c.ping()).pipe(Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("10 seconds"))))
      }
      yield* b.cache.getOrSet("after:k", origin.value("after", { tags: ["after-t"] }), policy())
      assert.isTrue(Option.isSome(yield* b.memory.get("after:k")))
      const heard = yield* appliedWhere(b, (m) => m.tags?.includes("after-t") === true)
      yield* a.cache.invalidateTags(["after-t"])
      yield* heard
      assert.isTrue(Option.isNone(yield* b.memory.get("after:k")))
      assert.strictEqual(b.stats.memoryDropped, 1, "one drop per outage")
    })

  /** b starts while the bus server is down; once it is up b subscribes, drops memory, and hears a. */
  const downAtStart = (kind: Kind) =>
    Effect.gen(function*() {
      const server = kind === "redis" ? yield* redisServer() : yield* postgresServer()
      const options: InstanceOptions = kind === "redis"
        ? { redisUrl: server.url, prefix: "da:", bus: { kind, url: server.url, channel: "bus" } }
        : { databaseUrl: server.url, bus: { kind, url: server.url, channel: "bus" } }
      yield* Effect.promise(() => server.kill())
      const b = yield* instance(options)
      const origin = makeOrigin()
      assertHit(yield* b.cache.getOrSet("early:k", origin.value("early"), policy()), "MISS", "early", "serves without its servers")
      yield* Effect.promise(() => server.restart())
      yield* b.dropped(1).pipe(Effect.timeout("20 seconds"))
      assert.isTrue(Option.isNone(yield* b.memory.get("early:k")), "what was loaded without a bus is dropped")
      const a = yield* instance(options)
      yield* b.cache.getOrSet("late:k", origin.value("late", { tags: ["late-t"] }), policy())
      const heard = yield* appliedWhere(b, (m) => m.tags?.includes("late-t") === true)
      yield* a.cache.invalidateTags(["late-t"])
      yield* heard
      assert.isTrue(Option.isNone(yield* b.memory.get("late:k")))
    })

  /** Stops (SIGSTOP) processes of a test server for a while: connections stay open, nothing answers. */
  const stopped = (pids: ReadonlyArray<number>) =>
    Effect.acquireRelease(
      Effect.sync(() => pids.forEach((pid) => process.kill(pid, "SIGSTOP"))),
      () => Effect.sync(() => pids.forEach((pid) => process.kill(pid, "SIGCONT")))
    )

  /** The bus connection stalls without closing: the heartbeat notices, reconnects, memory is dropped. */
  const stall = (kind: Kind) =>
    Effect.gen(function*() {
      const server = kind === "redis" ? yield* redisServer() : yield* postgresServer()
      const options: InstanceOptions = kind === "redis"
        ? { redisUrl: server.url, prefix: "da:", bus: { kind, url: server.url, channel: "bus" }, busHeartbeat: "200 millis" }
        : { databaseUrl: server.url, bus: { kind, url: server.url, channel: "bus" }, busHeartbeat: "200 millis" }
      const a = yield* instance(options)
      const b = yield* instance(options)
      const origin = makeOrigin()
      yield* b.cache.getOrSet("held:k", origin.value("held"), policy())
      // Redis: the whole server. PostgreSQL: the backends serving the bus connections.
      const pids = kind === "redis"
        ? [server.pid!]
        : yield* Effect.map(
          Effect.flatMap(sqlClient(server.url), (sql) =>
            sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = 'drupal-accelerator-bus'`),
          (rows) => rows.map((row) => row.pid)
        )
      assert.strictEqual(pids.length, kind === "redis" ? 1 : 2)
      yield* Effect.scoped(Effect.zipRight(stopped(pids), Effect.sleep("1 second")))
      yield* Effect.all([a.dropped(1), b.dropped(1)], { concurrency: 2 }).pipe(Effect.timeout("20 seconds"))
      assert.isTrue(Option.isNone(yield* b.memory.get("held:k")))
      if (kind === "redis") yield* eventually(a.redisAdapter!.use("ping", (c) => c.ping()))
      yield* b.cache.getOrSet("after:k", origin.value("after", { tags: ["after-t"] }), policy())
      const heard = yield* appliedWhere(b, (m) => m.tags?.includes("after-t") === true)
      yield* a.cache.invalidateTags(["after-t"])
      yield* heard
      assert.isTrue(Option.isNone(yield* b.memory.get("after:k")))
    })

  it.scopedLive("Redis bus: after the server restarts, onReconnect drops memory and invalidations flow again", () => outage("redis"), 60_000)
  it.scopedLive("Redis bus: a stalled subscriber connection is noticed by the heartbeat and made again", () => stall("redis"), 60_000)
  it.scopedLive("PostgreSQL bus: a stalled listening connection is noticed by the heartbeat and made again", () =>
    stall("postgres"), 60_000)
  it.scopedLive("Redis bus: an instance started while Redis was down subscribes once it is up", () => downAtStart("redis"), 60_000)
  it.scopedLive("PostgreSQL bus: an instance started while PostgreSQL was down listens once it is up", () =>
    downAtStart("postgres"), 60_000)
  it.scopedLive("PostgreSQL bus: after the server restarts, onReconnect drops memory and invalidations flow again", () =>
    outage("postgres"), 60_000)
})
