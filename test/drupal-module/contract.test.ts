/**
 * The module's Drupal-free classes, run with the PHP command line, against the gateway's side of
 * the contract: a delivery built by `WebhookDelivery` is accepted by the real `POST
 * /webhooks/drupal` route and invalidates what it names; `AccessPolicy` maps the installed
 * configuration to the documented levels and produces hashes the gateway's `AccessScope` reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { fileURLToPath } from "node:url"
import * as AccessScope from "../../src/access/AccessScope.js"
import { contentCacheKey, itemTag, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import { sign } from "../../src/invalidation/Webhook.js"
import { serveAdmin, WEBHOOK_SECRET as SECRET } from "../invalidation/support.js"
import { MODULE_DIR, moduleFile, parseYaml, php } from "./support.js"

const HARNESS = fileURLToPath(new URL("./harness.php", import.meta.url))

type Result = { readonly ok: any } | { readonly error: string }

/** Runs `calls` through the PHP harness; one result per call. */
const run = (calls: ReadonlyArray<Record<string, unknown>>) =>
  Effect.gen(function*() {
    const out = yield* php(["-d", "display_errors=stderr", HARNESS, MODULE_DIR], JSON.stringify(calls))
    assert.strictEqual(out.code, 0, out.stderr)
    const results = JSON.parse(out.stdout) as Array<Result>
    assert.strictEqual(results.length, calls.length)
    return results
  })

const ok = (result: Result | undefined): any => {
  assert.isDefined(result)
  if ("error" in result!) assert.fail(result.error)
  return (result as { ok: any }).ok
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

const delivery = (event: string, ids: ReadonlyArray<number>, timestamp: number, extra: Record<string, unknown> = {}) => ({
  op: "delivery",
  secret: SECRET,
  event,
  ids,
  timestamp,
  ...extra
})

const headersOf = (d: { readonly body: string; readonly headers: Record<string, string> }): RequestInit => ({
  headers: d.headers,
  body: d.body
})

describe("WebhookDelivery (PHP) against the gateway's webhook route", () => {
  it.effect("the body is the gateway's {event, ids}, sent as a Standard Webhook signed as the gateway (standardwebhooks) verifies", () =>
    Effect.gen(function*() {
      const [d] = yield* run([delivery("content.updated", [9, 7, 9], 1_700_000_000, { id: "msg_0123456789abcdef" })])
      const { body, headers } = ok(d)
      // Byte for byte: the gateway's own spec sends JSON.stringify({event, ids}); ids sorted, once each.
      assert.strictEqual(body, JSON.stringify({ event: "content.updated", ids: [7, 9] }))
      assert.deepStrictEqual(headers, {
        "Content-Type": "application/json",
        "webhook-id": "msg_0123456789abcdef",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign(SECRET, "msg_0123456789abcdef", 1_700_000_000, body)
      })
      const random = ok((yield* run([delivery("content.deleted", [1], 1)]))[0])
      assert.match(random.headers["webhook-id"], /^msg_[0-9a-f]{32}$/)
      assert.strictEqual(random.id, random.headers["webhook-id"])
    }))

  it.effect("refuses what the gateway would refuse: unknown events, no ids, ids < 1, more than 1000 ids, a bad id, a secret that is not whsec_", () =>
    Effect.gen(function*() {
      const results = yield* run([
        delivery("content.exploded", [1], 1),
        delivery("content.updated", [], 1),
        delivery("content.updated", [0, 5], 1),
        delivery("content.updated", Array.from({ length: 1001 }, (_, i) => i + 1), 1),
        { ...delivery("content.updated", [1], 1), secret: "" },
        { ...delivery("content.updated", [1], 1), secret: "drupal-shared-secret" },
        { ...delivery("content.updated", [1], 1), secret: "whsec_c2hvcnQ=" },
        delivery("content.updated", [1], 1, { id: "has space" }),
        delivery("content.updated", Array.from({ length: 1000 }, (_, i) => i + 1), 1)
      ])
      for (const r of results.slice(0, 8)) assert.match((r as { error: string }).error, /^InvalidArgumentException: /)
      assert.notInclude((results[5] as { error: string }).error, "drupal-shared-secret")
      assert.lengthOf(JSON.parse(ok(results[8]).body).ids, 1000)
    }))

  it.scopedLive("the route accepts a delivery (202) and drops the item's entries; content.created also drops search pages", () =>
    Effect.gen(function*() {
      const hook = yield* serveAdmin({ WEBHOOK_SECRET: SECRET, WEBHOOK_TOLERANCE_MS: "60000" })
      const item7 = contentCacheKey("anonymous", 7, true, "html")
      const item8 = contentCacheKey("anonymous", 8, true, "html")
      const page = "search:anonymous:views"
      yield* hook.seed(item7, [itemTag(7)])
      yield* hook.seed(item8, [itemTag(8)])
      yield* hook.seed(page, [SEARCH_TAG, itemTag(9)])

      const [updated, created] = yield* run([delivery("content.updated", [7], nowSeconds()), delivery("content.created", [100], nowSeconds())])
      const first = yield* hook.request("/webhooks/drupal", headersOf(ok(updated)))
      assert.deepStrictEqual([first.status, first.body], [202, { invalidated: { tags: 1 } }])
      assert.deepStrictEqual([yield* hook.has(item7), yield* hook.has(item8), yield* hook.has(page)], [false, true, true])
      const second = yield* hook.request("/webhooks/drupal", headersOf(ok(created)))
      assert.deepStrictEqual([second.status, second.body], [202, { invalidated: { tags: 2 } }])
      assert.deepStrictEqual([yield* hook.has(item8), yield* hook.has(page)], [true, false])
    }))

  it.scopedLive("two deliveries of the same change in the same second are both carried out (each has its own webhook-id); a retry is a duplicate", () =>
    Effect.gen(function*() {
      const hook = yield* serveAdmin({ WEBHOOK_SECRET: SECRET, WEBHOOK_TOLERANCE_MS: "60000" })
      const t = nowSeconds()
      const [a, b] = yield* run([delivery("content.updated", [7], t), delivery("content.updated", [7], t)])
      assert.notStrictEqual(ok(a).headers["webhook-id"], ok(b).headers["webhook-id"])
      assert.strictEqual((yield* hook.request("/webhooks/drupal", headersOf(ok(a)))).status, 202)
      const item7 = contentCacheKey("anonymous", 7, true, "html")
      yield* hook.seed(item7, [itemTag(7)])
      assert.deepStrictEqual((yield* hook.request("/webhooks/drupal", headersOf(ok(b)))).body, { invalidated: { tags: 1 } })
      assert.isFalse(yield* hook.has(item7), "the second save's delivery invalidated again")
      // The same delivery sent again (a retry keeps its id) is answered 2xx and changes nothing.
      yield* hook.seed(item7, [itemTag(7)])
      const retry = yield* hook.request("/webhooks/drupal", headersOf(ok(b)))
      assert.deepStrictEqual([retry.status, retry.body], [202, { invalidated: { tags: 0 }, duplicate: true }])
      assert.isTrue(yield* hook.has(item7))
    }))

  it.scopedLive("a delivery signed with another secret is 401 and drops nothing", () =>
    Effect.gen(function*() {
      const hook = yield* serveAdmin({ WEBHOOK_SECRET: SECRET, WEBHOOK_TOLERANCE_MS: "60000" })
      const item7 = contentCacheKey("anonymous", 7, true, "html")
      yield* hook.seed(item7, [itemTag(7)])
      const [d] = yield* run([{ ...delivery("content.updated", [7], nowSeconds()), secret: "whsec_" + Buffer.alloc(32, 3).toString("base64") }])
      const answer = yield* hook.request("/webhooks/drupal", headersOf(ok(d)))
      assert.deepStrictEqual([answer.status, answer.body.error.code], [401, "unauthorized"])
      assert.isTrue(yield* hook.has(item7))
    }))
})

describe("AccessPolicy (PHP) with the installed configuration", () => {
  const settings = (parseYaml(moduleFile("config/install/drupal_accelerator.settings.yml")) as any)["access_levels"]

  it.effect("levels: anonymous, authenticated → free, subscriber, `administer site configuration` → admin", () =>
    Effect.gen(function*() {
      const level = (roles: Array<string>, permissions: Array<string> = []) => ({ op: "level", roles, permissions, settings })
      const results = yield* run([
        level(["anonymous"]),
        level(["authenticated"]),
        level(["authenticated", "member"]),
        level(["authenticated", "subscriber"]),
        level(["authenticated", "editor"], ["administer site configuration"]),
        level(["anonymous"], ["administer site configuration"]),
        level([]),
        { op: "level", roles: ["authenticated"], permissions: [], settings: { ...settings, roles: [{ role: "authenticated", level: "Free Plan" }] } }
      ])
      assert.deepStrictEqual(results.slice(0, 7).map(ok), ["anonymous", "free", "free", "subscriber", "admin", "admin", "anonymous"])
      assert.match((results[7] as { error: string }).error, /InvalidArgumentException: Access level "Free Plan"/)
    }))

  it.effect("`user` is added when node access is per user: view own unpublished content without bypass", () =>
    Effect.gen(function*() {
      const perUser = (authenticated: boolean, permissions: Array<string>) => ({ op: "perUser", authenticated, permissions })
      const results = yield* run([
        perUser(true, ["view own unpublished content"]),
        perUser(true, ["view own unpublished content", "bypass node access"]),
        perUser(true, ["access content"]),
        perUser(false, ["view own unpublished content"])
      ])
      assert.deepStrictEqual(results.map(ok), [true, false, false, false])
    }))

  it.effect("the hash: 64 hex, equal for equal inputs, different when any context value, the level, a site rule or the salt differs", () =>
    Effect.gen(function*() {
      const values = { "user.permissions": "[user.permissions]=abc", "user.node_grants:view": "[user.node_grants:view]=view.all:0" }
      const hash = (over: Record<string, unknown> = {}) => ({ op: "hash", level: "free", values, rules: {}, salt: "salt", ...over })
      const results = (yield* run([
        hash(),
        hash({ values: { "user.node_grants:view": values["user.node_grants:view"], "user.permissions": values["user.permissions"] } }),
        hash({ values: { ...values, "user.permissions": "[user.permissions]=abd" } }),
        hash({ values: { ...values, "user.node_grants:view": "[user.node_grants:view]=view.all:0;gid:5" } }),
        hash({ level: "subscriber" }),
        hash({ rules: { groups: [5] } }),
        hash({ salt: "other" }),
        { op: "contexts", contexts: ["user.permissions", "user", "user.node_grants:view", "user"] },
        { op: "contexts", contexts: ["user permissions"] }
      ])).map((r, i) => (i < 8 ? ok(r) : r))
      const hashes = results.slice(0, 7) as Array<string>
      for (const h of hashes) assert.match(h, /^[0-9a-f]{64}$/)
      assert.strictEqual(hashes[0], hashes[1], "the order of the contexts does not matter")
      assert.strictEqual(new Set(hashes.slice(1)).size, 6)
      assert.deepStrictEqual(results[7], ["user", "user.node_grants:view", "user.permissions"])
      assert.match((results[8] as { error: string }).error, /InvalidArgumentException/)

      // What the gateway makes of such a reply.
      const decode = Schema.decodeUnknownEither(AccessScope.AccessContext)
      const reply = (contexts: ReadonlyArray<string>) => ({ uid: 2, access_level: "free", roles: ["authenticated"], access_hash: hashes[0], contexts })
      const shared = decode(reply(results[7].slice(1)))
      const own = decode(reply(results[7]))
      assert.isTrue(Either.isRight(shared) && Either.isRight(own))
      if (Either.isRight(shared) && Either.isRight(own)) {
        assert.strictEqual(AccessScope.partitionOf(shared.right, "t:0123").id, `lvl:free:${hashes[0]!.slice(0, 16)}`)
        assert.strictEqual(AccessScope.partitionOf(own.right, "t:0123").id, `usr:0123:${hashes[0]!.slice(0, 16)}`)
      }
    }))
})
