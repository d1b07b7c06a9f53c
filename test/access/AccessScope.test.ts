/**
 * Caller partitions from `user.access_context`: first against in-process Drupal replies (every
 * shape the contract allows, and the ones it refuses), then against the simulator through the real
 * client.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, TestClock } from "effect"
import { createHash } from "node:crypto"
import { inject } from "vitest"
import * as AccessScope from "../../src/access/AccessScope.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import {
  anonymous,
  bearer,
  type Credentials,
  fingerprintKey,
  fromAuthorizationHeader,
  processKey
} from "../../src/drupal/Credentials.js"
import { type DrupalError, DrupalHttpError, DrupalRpcError, DrupalTransportError } from "../../src/drupal/DrupalError.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"
import { toApiError } from "../../src/http/ErrorMapping.js"
import { instance, isolation } from "../cache/tiered-fixtures.js"
import { ClientTest } from "../drupal/fixtures.js"

const HASH_A = "a".repeat(24) + "0123456789abcdef0123456789abcdef"
const HASH_B = "b".repeat(24) + "0123456789abcdef0123456789abcdef"
const SHARED = ["user.node_grants:view", "user.permissions"]

const reply = (level: string, hash: string, contexts: ReadonlyArray<string> = SHARED) => ({
  uid: 7,
  access_level: level,
  roles: ["authenticated"],
  access_hash: hash,
  contexts
})

const methodNotFound = new DrupalRpcError({
  code: -32601,
  message: "Method Not Found",
  data: "The method 'user.access_context' does not exist/is not available.",
  method: "user.access_context",
  id: 1
})

/**
 * A Drupal that answers `user.access_context` from `replies` (by token), counting the calls. Only
 * `call` is used by the scope; the rest of the client is not part of this spec.
 */
const fakeDrupal = (replies: ReadonlyMap<string, unknown>) => {
  let calls = 0
  const rpc: DrupalRpc = {
    call: (method, _params, credentials) =>
      Effect.suspend((): Effect.Effect<unknown, DrupalError> => {
        calls++
        assert.strictEqual(method, "user.access_context")
        const found = replies.get(credentials.fingerprint)
        if (found instanceof DrupalRpcError) return Effect.fail(found)
        return found === undefined ? Effect.dieMessage(`no reply for ${credentials.fingerprint}`) : Effect.succeed(found)
      }),
    stream: () => {
      throw new Error("not used by AccessScope")
    },
    discovery: () => Effect.dieMessage("not used by AccessScope"),
    pool: () => ({ connected: 0, free: 0, pending: 0, running: 0 }),
    breakerState: Effect.dieMessage("not used by AccessScope")
  }
  return { rpc, calls: () => calls }
}

/** An AccessScope over a memory-only tiered cache (or `over`) and the given client. */
const scopeOver = (rpc: DrupalRpc, options: Partial<AccessScope.AccessScopeOptions> = {}, over?: TieredCache.TieredCache) =>
  Effect.gen(function*() {
    const memory = yield* MemoryTier.make()
    const cache = over ?? (yield* TieredCache.make({ memory, writeQueueCapacity: 100, writeBatchSize: 10, invalidationMemory: 100 }))
    return yield* AccessScope.make({ ttl: "1 minute", ...options }).pipe(
      Effect.provideService(DrupalRpc, rpc),
      Effect.provideService(TieredCache.TieredCache, cache)
    )
  })

/** Partitions of `callers` from a fake Drupal answering `replies[i]` to `callers[i]`. */
const partitionsFor = (entries: ReadonlyArray<readonly [Credentials, unknown]>) =>
  Effect.gen(function*() {
    const drupal = fakeDrupal(new Map(entries.map(([c, r]) => [c.fingerprint, r])))
    const scope = yield* scopeOver(drupal.rpc)
    const partitions = yield* Effect.forEach(entries, ([c]) => scope.partition(c))
    return { partitions, calls: drupal.calls, scope }
  })

const [ann, bob, cy, dee] = ["ann-token", "bob-token", "cy-token", "dee-token"].map((token) => bearer(token)) as [Credentials, Credentials, Credentials, Credentials]

describe("AccessScope against Drupal replies", () => {
  it.scoped("callers with equal access_level and access_hash share one partition; any difference splits them", () =>
    Effect.gen(function*() {
      const { partitions, calls } = yield* partitionsFor([
        [ann, reply("free", HASH_A)],
        [bob, reply("free", HASH_A)],
        [cy, reply("free", HASH_B)],
        [dee, reply("subscriber", HASH_A)]
      ])
      const [a, b, c, d] = partitions.map((p) => p.id)
      assert.strictEqual(a, `lvl:free:${HASH_A.slice(0, 16)}`)
      assert.strictEqual(a, b)
      assert.strictEqual(new Set([a, c, d]).size, 3)
      assert.deepStrictEqual(partitions.map((p) => p.level), ["free", "free", "free", "subscriber"])
      assert.strictEqual(calls(), 4)
    }))

  it.scoped("a lookup that outlasts the hard timeout fails with LoadTimeout (answered 504 upstream_timeout), not a defect", () =>
    Effect.gen(function*() {
      const hanging: DrupalRpc = { ...fakeDrupal(new Map()).rpc, call: () => Effect.never }
      // The hard timeout runs on the real clock: a short one.
      const scope = yield* scopeOver(hanging, { hardTimeout: "50 millis" })
      const result = yield* Effect.either(scope.partition(ann))
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "LoadTimeout")
        assert.deepStrictEqual(toApiError(result.left).code, "upstream_timeout")
      }
    }))

  // Live clock: the synchronous path compares with the wall clock.
  it.scopedLive("a `user` context gives each caller a partition of its own, keyed by its fingerprint, never its token", () =>
    Effect.gen(function*() {
      const perUser = [...SHARED, "user"]
      const { partitions, scope, calls } = yield* partitionsFor([
        [ann, reply("free", HASH_A, perUser)],
        [bob, reply("free", HASH_A, perUser)],
        [cy, reply("free", HASH_A)]
      ])
      const [a, b, c] = partitions.map((p) => p.id)
      assert.strictEqual(a, `usr:${ann.fingerprint.slice(2)}:${HASH_A.slice(0, 16)}`)
      assert.strictEqual(b, `usr:${bob.fingerprint.slice(2)}:${HASH_A.slice(0, 16)}`)
      assert.strictEqual(c, `lvl:free:${HASH_A.slice(0, 16)}`)
      assert.strictEqual(new Set([a, b, c]).size, 3, "same level and hash, yet three partitions")
      assert.notInclude(a!, "ann-token", "the raw token never reaches a key")
      assert.notInclude(b!, "bob-token", "the raw token never reaches a key")
      assert.strictEqual(partitions[0]!.level, "free")
      // Known now: the synchronous hit path finds it, and a second ask does not call Drupal.
      assert.strictEqual(scope.partitionSync(ann)?.id, a)
      assert.strictEqual((yield* scope.partition(ann)).id, a)
      assert.strictEqual(calls(), 3)
    }))

  it.scoped("`session` is per caller too; other contexts in the list are only covered by the hash", () =>
    Effect.gen(function*() {
      const { partitions } = yield* partitionsFor([
        [ann, reply("free", HASH_A, [...SHARED, "session"])],
        [bob, reply("free", HASH_A, [...SHARED, "user.roles", "url.site"])],
        [cy, reply("free", HASH_A, [...SHARED, "user.roles", "url.site"])]
      ])
      const [a, b, c] = partitions.map((p) => p.id)
      assert.isTrue(a!.startsWith("usr:"))
      assert.strictEqual(b, `lvl:free:${HASH_A.slice(0, 16)}`)
      assert.strictEqual(b, c)
    }))

  it.scoped("a reply without a readable access_hash and contexts, or a site without the method, is a partition per token", () =>
    Effect.gen(function*() {
      const legacy = { uid: 7, access_level: "free", roles: [], permissions_hash: HASH_A }
      const { partitions, calls } = yield* partitionsFor([
        [ann, legacy],
        [bob, { ...reply("free", HASH_A), contexts: undefined }],
        [cy, reply("free", "abc123")],
        [dee, methodNotFound]
      ])
      for (const [i, who] of [ann, bob, cy, dee].entries()) {
        assert.deepStrictEqual(partitions[i], { id: `tok:${who.fingerprint.slice(2)}`, level: "token" })
      }
      assert.strictEqual(calls(), 4)
    }))

  it.scoped("anonymous callers share `anon` without asking Drupal", () =>
    Effect.gen(function*() {
      const drupal = fakeDrupal(new Map())
      const scope = yield* scopeOver(drupal.rpc)
      assert.deepStrictEqual(yield* scope.partition(anonymous), AccessScope.anonymousPartition)
      assert.deepStrictEqual(scope.partitionSync(fromAuthorizationHeader(" ")), AccessScope.anonymousPartition)
      assert.strictEqual(drupal.calls(), 0)
    }))
})

describe("AccessScope against the simulator", () => {
  it.scopedLive("free and subscriber get shared level partitions; once free users may view their own unpublished content, each gets its own", () =>
    Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const free = bearer("demo-free-token")
      const freeBasic = fromAuthorizationHeader(`Basic ${Buffer.from("free:free").toString("base64")}`)
      const before = yield* scopeOver(rpc)
      const [f1, f2, s] = yield* Effect.forEach([free, freeBasic, bearer("demo-subscriber-token")], before.partition)
      assert.isTrue(f1!.id.startsWith("lvl:free:"), f1!.id)
      assert.strictEqual(f1!.id, f2!.id, "the same user by token or password shares")
      assert.isTrue(s!.id.startsWith("lvl:subscriber:"), s!.id)

      const granted = yield* rpc.call(
        "user_permissions.add_permission_to_role",
        { permission: "view own unpublished content", role: { type: "user_role", uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c03" } },
        bearer("demo-admin-token")
      )
      assert.isNumber(granted)
      const after = yield* scopeOver(rpc)
      const [g1, g2, s2] = yield* Effect.forEach([free, freeBasic, bearer("demo-subscriber-token")], after.partition)
      assert.strictEqual(g1!.id, `usr:${free.fingerprint.slice(2)}:${g1!.id.split(":")[2]}`)
      assert.isTrue(g2!.id.startsWith(`usr:${freeBasic.fingerprint.slice(2)}:`), g2!.id)
      assert.notStrictEqual(g1!.id, g2!.id)
      assert.strictEqual(g1!.level, "free")
      assert.strictEqual(s2!.id, s!.id, "subscribers are not affected by the member role's grant")
    }).pipe(Effect.provide(ClientTest())))
})

/** A Drupal that answers every `user.access_context` call with `answer()`, counting the calls. */
const answering = (answer: () => Effect.Effect<unknown, DrupalError>) => {
  const base = fakeDrupal(new Map())
  let calls = 0
  const rpc: DrupalRpc = {
    ...base.rpc,
    call: () =>
      Effect.suspend(() => {
        calls++
        return answer()
      })
  }
  return { rpc, calls: () => calls }
}

const unauthorized = () => Effect.fail(new DrupalHttpError({ status: 401, bodyExcerpt: "Unauthorized", method: "user.access_context" }))

describe("keyed fingerprints", () => {
  it("a fingerprint is an HMAC under the deployment key: not the plain hash, equal under one key, different under another", () => {
    const header = "Bearer demo-admin-token"
    const plain = createHash("sha256").update(header).digest("hex")
    const a = fingerprintKey("a".repeat(32))
    const b = fingerprintKey("b".repeat(32))
    const underA = fromAuthorizationHeader(header, a).fingerprint
    assert.strictEqual(underA, fromAuthorizationHeader(header, fingerprintKey("a".repeat(32))).fingerprint)
    assert.notStrictEqual(underA, fromAuthorizationHeader(header, b).fingerprint)
    assert.notStrictEqual(underA, fromAuthorizationHeader(header, processKey).fingerprint)
    assert.match(underA, /^t:[0-9a-f]{32}$/)
    assert.notInclude(plain, underA.slice(2), "not a prefix of the plain sha256")
    assert.notInclude(underA, "demo-admin-token")
  })

  const keyWith = (config: Record<string, string>) =>
    Effect.either(Effect.withConfigProvider(
      Effect.flatMap(AccessScope.fingerprintKeyConfig, (key) => Effect.succeed(fromAuthorizationHeader("Bearer x", key).fingerprint)),
      ConfigProvider.fromMap(new Map(Object.entries(config)))
    ))

  it.effect("FINGERPRINT_SECRET is required with Redis or PostgreSQL, must be long, and is drawn per process otherwise", () =>
    Effect.gen(function*() {
      for (const backing of [{ REDIS_URL: "redis://127.0.0.1:1" }, { DATABASE_URL: "postgres://x@127.0.0.1:1/db" }]) {
        const missing = yield* keyWith(backing)
        assert.isTrue(Either.isLeft(missing))
        if (Either.isLeft(missing)) assert.include(String(missing.left), "FINGERPRINT_SECRET is required")
      }
      const short = yield* keyWith({ REDIS_URL: "redis://127.0.0.1:1", FINGERPRINT_SECRET: "short" })
      assert.isTrue(Either.isLeft(short) && String(short.left).includes("at least 32"))
      const secret = "s".repeat(40)
      const [one, two] = [yield* keyWith({ REDIS_URL: "redis://127.0.0.1:1", FINGERPRINT_SECRET: secret }), yield* keyWith({ FINGERPRINT_SECRET: secret })]
      assert.deepStrictEqual(one, two, "instances with one secret agree")
      assert.deepStrictEqual(one, Either.right(fromAuthorizationHeader("Bearer x", fingerprintKey(secret)).fingerprint))
      assert.deepStrictEqual(yield* keyWith({}), Either.right(fromAuthorizationHeader("Bearer x", processKey).fingerprint))
    }))

  it.scoped("the scope's credentials are fingerprinted with its key", () =>
    Effect.gen(function*() {
      const key = fingerprintKey("k".repeat(32))
      const scope = yield* scopeOver(fakeDrupal(new Map()).rpc, { key })
      assert.strictEqual(scope.credentials("Bearer t").fingerprint, bearer("t", key).fingerprint)
      assert.strictEqual(scope.credentials(undefined), anonymous)
    }))
})

describe("refused lookups are remembered", () => {
  it.scoped("20 requests with one unknown token cost one upstream call per AUTH_FAILURE_CACHE_MS; each is answered 401", () =>
    Effect.gen(function*() {
      const drupal = answering(unauthorized)
      const scope = yield* scopeOver(drupal.rpc, { failureTtl: "10 seconds" })
      const stranger = bearer("unknown-token")
      for (let i = 0; i < 20; i++) {
        const result = yield* Effect.either(scope.partition(stranger))
        assert.isTrue(Either.isLeft(result))
        assert.isTrue(Either.isLeft(result) && result.left._tag === "DrupalHttpError" && result.left.status === 401)
      }
      assert.strictEqual(drupal.calls(), 1)
      assert.strictEqual(scope.partitionSync(stranger), undefined, "the hit path never serves a refused caller")
      yield* TestClock.adjust("11 seconds")
      yield* Effect.either(scope.partition(stranger))
      assert.strictEqual(drupal.calls(), 2, "asked again once the memory ran out")
    }))

  it.scoped("concurrent requests with one unknown token share one call", () =>
    Effect.gen(function*() {
      const drupal = answering(unauthorized)
      const scope = yield* scopeOver(drupal.rpc)
      const results = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.either(scope.partition(bearer("x"))), { concurrency: "unbounded" })
      assert.isTrue(results.every(Either.isLeft))
      assert.strictEqual(drupal.calls(), 1)
    }))

  it.scoped("a JSON-RPC refusal is remembered with its code; a transient or backend failure is not", () =>
    Effect.gen(function*() {
      // The module's Access Denied: -32600 with the reason in `data`.
      const denied = answering(() =>
        Effect.fail(new DrupalRpcError({ code: -32600, message: "Invalid request", data: "Access Denied", method: "user.access_context", id: 1 }))
      )
      const scope = yield* scopeOver(denied.rpc)
      for (let i = 0; i < 3; i++) {
        const result = yield* Effect.either(scope.partition(bearer("y")))
        assert.isTrue(Either.isLeft(result) && result.left._tag === "DrupalRpcError" && result.left.code === -32600)
      }
      assert.strictEqual(denied.calls(), 1)

      // A backend failure of the lookup (-32603, even one the site marks not worth retrying)
      // says nothing of the token: it is not remembered.
      const failing = answering(() =>
        Effect.fail(new DrupalRpcError({ code: -32603, message: "Internal error", data: { retryable: false }, method: "user.access_context", id: 1 }))
      )
      const third = yield* scopeOver(failing.rpc)
      for (let i = 0; i < 3; i++) yield* Effect.either(third.partition(bearer("w")))
      assert.strictEqual(failing.calls(), 3, "a backend failure must not lock callers out")

      const down = answering(() => Effect.fail(new DrupalTransportError({ reason: "connection_refused", cause: null })))
      const other = yield* scopeOver(down.rpc)
      for (let i = 0; i < 3; i++) yield* Effect.either(other.partition(bearer("z")))
      assert.strictEqual(down.calls(), 3, "an outage must not lock callers out")
    }))

  it.scopedLive("past its freshness a partition is asked again: a transient failure lets the stale one stand in, a refusal ends it", () =>
    Effect.gen(function*() {
      let answer: () => Effect.Effect<unknown, DrupalError> = () => Effect.succeed(reply("subscriber", HASH_A))
      const drupal = answering(() => answer())
      const scope = yield* scopeOver(drupal.rpc, { ttl: "300 millis" })
      const caller = bearer("stale-partition-token")
      const first = yield* scope.partition(caller)
      yield* Effect.sleep("400 millis")
      assert.strictEqual(scope.partitionSync(caller), undefined, "the hit path trusts only a fresh partition")
      // Drupal is down: the stale partition stands in (the lookup was tried).
      answer = () => Effect.fail(new DrupalTransportError({ reason: "connection_refused", cause: null }))
      const stale = yield* scope.partition(caller)
      assert.strictEqual(stale.id, first.id)
      assert.strictEqual(drupal.calls(), 2)
      // Drupal refuses the token now: the refusal is answered, not the stale partition.
      answer = () => Effect.fail(new DrupalRpcError({ code: -32600, message: "Invalid request", data: "Access Denied", method: "user.access_context", id: 1 }))
      const refused = yield* Effect.either(scope.partition(caller))
      assert.isTrue(Either.isLeft(refused), "a refusal is never hidden behind the stale partition")
    }))

  it.scopedLive("a partition used near the end of its freshness is looked up again in the background: a busy caller never waits at expiry, and a refusal found ahead ends it", () =>
    Effect.gen(function*() {
      let answer: () => Effect.Effect<unknown, DrupalError> = () => Effect.succeed(reply("subscriber", HASH_A))
      const drupal = answering(() => answer())
      // Fresh for 4 s; used in its last second, it is looked up again ahead.
      const scope = yield* scopeOver(drupal.rpc, { ttl: "4 seconds", refreshAhead: 0.25 })
      const caller = bearer("busy-caller-token")
      const first = yield* scope.partition(caller)
      yield* Effect.sleep("1 second")
      assert.strictEqual(scope.partitionSync(caller)?.id, first.id)
      assert.strictEqual(drupal.calls(), 1, "not ahead before the last quarter")
      yield* Effect.sleep("2200 millis")
      // Used (by the hit path) in the last quarter: answered at once, looked up ahead.
      assert.strictEqual(scope.partitionSync(caller)?.id, first.id)
      yield* Effect.sleep("200 millis")
      assert.strictEqual(drupal.calls(), 2, "one lookup ahead of expiry")
      yield* Effect.sleep("1000 millis")
      // Past the first lookup's freshness, the second one's answer is fresh in memory: no wait.
      assert.strictEqual(scope.partitionSync(caller)?.id, first.id, "fresh from the lookup ahead")
      assert.strictEqual(drupal.calls(), 2)

      // The token is revoked: the next lookup ahead finds the refusal, and it is answered.
      answer = () => Effect.fail(new DrupalRpcError({ code: -32600, message: "Invalid request", data: "Access Denied", method: "user.access_context", id: 1 }))
      yield* Effect.sleep("2000 millis")
      assert.isDefined(scope.partitionSync(caller), "still within the freshness of the lookup ahead")
      yield* Effect.sleep("200 millis")
      assert.strictEqual(drupal.calls(), 3)
      const refused = yield* Effect.either(scope.partition(caller))
      assert.isTrue(Either.isLeft(refused), "the refusal found ahead is answered at once")
      assert.strictEqual(drupal.calls(), 3, "remembered, not asked again")
    }), { timeout: 30_000 })

  it.scoped("AUTH_FAILURE_CACHE_MS = 0 remembers nothing", () =>
    Effect.gen(function*() {
      const drupal = answering(unauthorized)
      const scope = yield* scopeOver(drupal.rpc, { failureTtl: 0 })
      for (let i = 0; i < 3; i++) yield* Effect.either(scope.partition(bearer("u")))
      assert.strictEqual(drupal.calls(), 3)
    }))
})

describe("revocation", () => {
  const free = reply("free", HASH_A)

  it.scoped("clearing the `scope` namespace is seen by the hit path at once, and the next request asks Drupal", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryTier.make()
      const cache = yield* TieredCache.make({ memory, writeQueueCapacity: 100, writeBatchSize: 10, invalidationMemory: 100 })
      const drupal = answering(() => Effect.succeed(free))
      const scope = yield* scopeOver(drupal.rpc, {}, cache)
      yield* scope.partition(ann)
      yield* cache.clear("scope")
      assert.strictEqual(yield* scope.partition(ann).pipe(Effect.map((p) => p.level)), "free")
      assert.strictEqual(drupal.calls(), 2)
    }))

  // Live clock: Redis keeps real time, and the hit path reads the wall clock.
  it.scopedLive("a partition read from Redis is trusted only until the stored entry's freshness ends, and a clear reaches every instance", () =>
    Effect.gen(function*() {
      const redisUrl = inject("redisUrl")
      const { prefix } = yield* isolation({ redisUrl })
      const channel = `scope_${prefix.replace(/[^a-z0-9]/g, "_")}`
      const [a, b] = yield* Effect.all([
        instance({ redisUrl, prefix, bus: { kind: "redis", url: redisUrl, channel } }),
        instance({ redisUrl, prefix, bus: { kind: "redis", url: redisUrl, channel } })
      ])
      const drupal = answering(() => Effect.succeed(free))
      const options = { ttl: "2 seconds", key: fingerprintKey("r".repeat(32)) } as const
      const [onA, onB] = [yield* scopeOver(drupal.rpc, options, a.cache), yield* scopeOver(drupal.rpc, options, b.cache)]
      const caller = onA.credentials("Bearer revocable")
      yield* onA.partition(caller)
      yield* a.cache.flush
      yield* Effect.sleep("1200 millis")
      // B reads A's entry from Redis: no call, and its hit path knows the caller...
      assert.strictEqual((yield* onB.partition(caller)).level, "free")
      assert.strictEqual(drupal.calls(), 1)
      assert.isDefined(onB.partitionSync(caller))
      // ...only until the entry A stored stops being fresh (2 s after A's lookup, not 2 s after B's read).
      yield* Effect.sleep("1000 millis")
      assert.strictEqual(onB.partitionSync(caller), undefined)
      yield* onB.partition(caller)
      assert.strictEqual(drupal.calls(), 2)
      yield* b.cache.flush
      // A clear on A empties B's memory too.
      assert.isDefined(onB.partitionSync(caller))
      yield* a.cache.clear("scope")
      yield* Effect.sleep("300 millis")
      assert.strictEqual(onB.partitionSync(caller), undefined)
    }))
})
