/**
 * Method discovery keyed by access partition: callers of one partition share one set; a caller
 * Drupal refuses gets none; a caller's credentials are kept only `credentialTtl` after its last
 * call, and only partitions whose credentials are still held are refreshed.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Either, TestClock } from "effect"
import * as ArgumentValidator from "../../src/discovery/ArgumentValidator.js"
import * as Discovery from "../../src/discovery/Discovery.js"
import { bearer, type Credentials } from "../../src/drupal/Credentials.js"
import { type DrupalError, DrupalHttpError } from "../../src/drupal/DrupalError.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"

const doc = (ids: ReadonlyArray<string>) => ({
  data: ids.map((id) => ({ type: "JsonRpcMethod", id, attributes: { usage: `The ${id} method.`, params: {} } }))
})

const unauthorized = new DrupalHttpError({ status: 401, bodyExcerpt: "", method: "user.access_context" })

/** Callers by token: their partition (or none: refused) and the methods Drupal lists them. */
const site = {
  "admin-1": { partition: "lvl:admin:aaaa", methods: ["cache.rebuild", "content.search"] },
  "admin-2": { partition: "lvl:admin:aaaa", methods: ["cache.rebuild", "content.search"] },
  "free-1": { partition: "lvl:free:bbbb", methods: ["content.search"] }
} as Record<string, { readonly partition: string; readonly methods: ReadonlyArray<string> }>

const tokenOf = (credentials: Credentials): string | undefined =>
  Object.keys(site).find((token) => bearer(token).fingerprint === credentials.fingerprint)

/** Discovery over a fake Drupal that records the caller of every discovery request. */
const discoveryOver = (options: {
  readonly credentialTtl: Duration.DurationInput
  readonly refreshInterval?: Duration.DurationInput
  readonly maxPartitions?: number
}) =>
  Effect.gen(function*() {
    const fetchedBy: Array<string> = []
    const rpc: DrupalRpc = {
      call: () => Effect.dieMessage("not used by discovery"),
      stream: () => {
        throw new Error("not used by discovery")
      },
      discovery: (credentials) =>
        Effect.suspend((): Effect.Effect<unknown, DrupalError> => {
          const token = tokenOf(credentials)
          fetchedBy.push(token ?? "stranger")
          return token === undefined ? Effect.fail(unauthorized) : Effect.succeed(doc(site[token]!.methods))
        }),
      pool: () => ({ connected: 0, free: 0, pending: 0, running: 0 }),
      breakerState: Effect.dieMessage("not used by discovery")
    }
    const partitionOf = (credentials: Credentials) => {
      const token = tokenOf(credentials)
      return token === undefined ? Effect.fail(unauthorized) : Effect.succeed(site[token]!.partition)
    }
    const discovery = yield* Discovery.make({
      refreshInterval: options.refreshInterval ?? "1 hour",
      maxPartitions: options.maxPartitions ?? 16,
      credentialTtl: options.credentialTtl,
      partitionOf
    }).pipe(Effect.provideService(DrupalRpc, rpc), Effect.provide(ArgumentValidator.Default))
    return { discovery, fetchedBy }
  })

describe("Discovery keyed by access partition", () => {
  it.scoped("callers of one partition share one set and one fetch; another partition has its own", () =>
    Effect.gen(function*() {
      const { discovery, fetchedBy } = yield* discoveryOver({ credentialTtl: "1 minute" })
      const a = yield* discovery.methodSet(bearer("admin-1"))
      const b = yield* discovery.methodSet(bearer("admin-2"))
      const f = yield* discovery.methodSet(bearer("free-1"))
      assert.strictEqual(a, b)
      assert.deepStrictEqual(f.methods.map((m) => m.id), ["content.search"])
      assert.deepStrictEqual(fetchedBy, ["admin-1", "free-1"])
      // validate and ensureMethod read the same sets.
      assert.strictEqual((yield* discovery.validate(bearer("admin-2"), "cache.rebuild", {})).id, "cache.rebuild")
      const denied = yield* Effect.either(discovery.ensureMethod(bearer("free-1"), "cache.rebuild"))
      assert.isTrue(Either.isLeft(denied) && denied.left._tag === "UnknownMethod")
      assert.strictEqual(fetchedBy.length, 2)
    }))

  it.scoped("strangers cannot fill it: a refused caller gets no partition and costs no discovery request", () =>
    Effect.gen(function*() {
      const { discovery, fetchedBy } = yield* discoveryOver({ credentialTtl: "1 minute", maxPartitions: 2 })
      yield* discovery.methodSet(bearer("admin-1"))
      for (let i = 0; i < 300; i++) {
        const refused = yield* Effect.either(discovery.methodSet(bearer(`stranger-${i}`)))
        assert.isTrue(Either.isLeft(refused) && refused.left._tag === "DrupalHttpError")
      }
      yield* discovery.methodSet(bearer("admin-2"))
      assert.deepStrictEqual(fetchedBy, ["admin-1"], "the admin partition was never evicted, no stranger reached Drupal's discovery")
    }))

  it.scoped("credentials are kept credentialTtl after the caller's last call: only recently used partitions are refreshed", () =>
    Effect.gen(function*() {
      const { discovery, fetchedBy } = yield* discoveryOver({ credentialTtl: "1 minute", refreshInterval: "2 minutes" })
      yield* discovery.methodSet(bearer("admin-1"))
      yield* discovery.methodSet(bearer("free-1"))
      yield* TestClock.adjust("30 seconds")
      yield* discovery.methodSet(bearer("admin-2")) // the admin partition is used again: its latest caller is admin-2
      yield* TestClock.adjust("40 seconds") // t = 70 s: free-1's credentials (until 60 s) are forgotten
      yield* discovery.refreshAll
      assert.deepStrictEqual(fetchedBy, ["admin-1", "free-1", "admin-2"], "only the admin partition, as its latest caller")
      yield* TestClock.adjust("21 seconds") // t = 91 s: admin-2's credentials (until 90 s) are forgotten too
      yield* discovery.refreshAll
      assert.strictEqual(fetchedBy.length, 3, "nobody's credentials are held: nothing is refreshed")
      // Used again after its credentials were forgotten and its set went stale: fetched as the new caller.
      yield* TestClock.adjust("2 minutes")
      yield* discovery.methodSet(bearer("free-1"))
      assert.deepStrictEqual(fetchedBy.slice(3), ["free-1"])
    }))

  it.scoped("the background loop refreshes on its schedule with the credentials still held, and stops when they expire", () =>
    Effect.gen(function*() {
      const { discovery, fetchedBy } = yield* discoveryOver({ credentialTtl: "90 seconds", refreshInterval: "1 minute" })
      yield* discovery.methodSet(bearer("admin-1"))
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(fetchedBy, ["admin-1", "admin-1"])
      yield* TestClock.adjust("1 minute") // t = 120 s > 90 s: forgotten
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual(fetchedBy.length, 2)
    }))
})
