/**
 * Invalidation through the whole gateway: a signed Drupal webhook for item N drops its JSON, its
 * Markdown and every cached search page listing it; other entries stay.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { deliveryHeaders } from "../../src/invalidation/Webhook.js"
import { startGateway } from "../http/fixtures.js"
import { WEBHOOK_SECRET as SECRET } from "./support.js"

describe("invalidation through the gateway", () => {
  it.scopedLive("a signed content.updated webhook invalidates the item's JSON, Markdown and search pages listing it", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: "admin-secret" })
      const search = yield* Effect.promise(() => request("/search?q=drupal&limit=5"))
      const target = search.body.results[0].id as number
      const other = sim.corpus.items.find((i) => i.access === "free" && !search.body.results.some((r: { id: number }) => r.id === i.id))!.id
      for (const path of [`/content/${target}`, `/content/${target}/markdown`, `/content/${other}`]) {
        yield* Effect.promise(() => request(path))
      }
      for (const path of ["/search?q=drupal&limit=5", `/content/${target}`, `/content/${target}/markdown`, `/content/${other}`]) {
        const hit = yield* Effect.promise(() => request(path))
        assert.strictEqual(hit.headers.get("x-cache"), "HIT-MEMORY", path)
      }

      const body = JSON.stringify({ event: "content.updated", ids: [target] })
      const timestamp = Math.floor(Date.now() / 1000)
      const headers = { "content-type": "application/json", ...deliveryHeaders(SECRET, "msg_gateway_1", timestamp, body) }
      const accepted = yield* Effect.promise(() => request("/webhooks/drupal", { method: "POST", headers, body }))
      assert.strictEqual(accepted.status, 202)

      for (const path of ["/search?q=drupal&limit=5", `/content/${target}`, `/content/${target}/markdown`]) {
        const after = yield* Effect.promise(() => request(path))
        assert.strictEqual(after.headers.get("x-cache"), "MISS", path)
      }
      const untouched = yield* Effect.promise(() => request(`/content/${other}`))
      assert.strictEqual(untouched.headers.get("x-cache"), "HIT-MEMORY")

      const duplicate = yield* Effect.promise(() => request("/webhooks/drupal", { method: "POST", headers, body }))
      assert.deepStrictEqual([duplicate.status, duplicate.body], [202, { invalidated: { tags: 0 }, duplicate: true }])
      const wrong = "whsec_" + Buffer.alloc(32, 1).toString("base64")
      const forged = yield* Effect.promise(() =>
        request("/webhooks/drupal", { method: "POST", headers: { ...headers, ...deliveryHeaders(wrong, "msg_gateway_2", timestamp, body) }, body })
      )
      assert.deepStrictEqual([forged.status, forged.body.error.code], [401, "unauthorized"])

      const admin = yield* Effect.promise(() =>
        request("/admin/invalidate", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer admin-secret" },
          body: JSON.stringify({ tags: [`item:${other}`] })
        })
      )
      assert.strictEqual(admin.status, 200)
      const afterAdmin = yield* Effect.promise(() => request(`/content/${other}`))
      assert.strictEqual(afterAdmin.headers.get("x-cache"), "MISS")
    }))
})
