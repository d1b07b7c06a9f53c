/**
 * Caller partitions from `user.access_context`: first against in-process Drupal replies (every
 * shape the contract allows, and the ones it refuses), then against the simulator through the real
 * client.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import * as AccessScope from "../../src/access/AccessScope.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { anonymous, bearer, type Credentials, fromAuthorizationHeader } from "../../src/drupal/Credentials.js"
import { type DrupalError, DrupalRpcError } from "../../src/drupal/DrupalError.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"
import { toApiError } from "../../src/http/ErrorMapping.js"
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

/** An AccessScope over a memory-only tiered cache and the given client. */
const scopeOver = (rpc: DrupalRpc) =>
  Effect.gen(function*() {
    const memory = yield* MemoryTier.make()
    const cache = yield* TieredCache.make({ memory, writeQueueCapacity: 100, writeBatchSize: 10, invalidationMemory: 100 })
    return yield* AccessScope.make({ ttl: "1 minute", maxTokens: 100 }).pipe(
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

const [ann, bob, cy, dee] = ["ann-token", "bob-token", "cy-token", "dee-token"].map(bearer) as [Credentials, Credentials, Credentials, Credentials]

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
      const scope = yield* scopeOver(hanging)
      const fiber = yield* Effect.fork(Effect.either(scope.partition(ann)))
      yield* TestClock.adjust("16 seconds")
      const result = yield* Fiber.join(fiber)
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
