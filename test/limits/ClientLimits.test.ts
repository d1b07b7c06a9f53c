/**
 * Per-client bounds: the admission logic on a controlled clock, then through the whole gateway
 * (429 with `Retry-After` and the JSON error body), and across two instances sharing a real Redis.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { EventEmitter } from "node:events"
import type * as Http from "node:http"
import { inject } from "vitest"
import { ClientLimitsConfig } from "../../src/Config.js"
import * as ClientLimits from "../../src/limits/ClientLimits.js"
import { startGateway } from "../http/fixtures.js"

/** A request from `address` and a response that records what was written. */
const exchange = (address: string, url = "/search?q=a", headers: Record<string, string> = {}) => {
  const req = { url, headers, socket: { remoteAddress: address } } as unknown as Http.IncomingMessage
  const written: { status?: number; headers?: Record<string, unknown>; body?: string } = {}
  const res = Object.assign(new EventEmitter(), {
    writeHead: (status: number, h: Record<string, unknown>) => {
      written.status = status
      written.headers = h
    },
    end: (body: string) => {
      written.body = body
    }
  }) as unknown as Http.ServerResponse
  return { req, res, written, close: () => (res as unknown as EventEmitter).emit("close") }
}

const options: ClientLimits.ClientLimitsOptions = {
  maxConcurrent: 2,
  ratePerSecond: 10,
  burst: 5,
  maxClients: 3,
  trustProxyHops: 0,
  exemptPaths: ["/health/live"]
}

describe("client limits: admission", () => {
  it.effect("concurrency: the third request in flight is refused 429, a finished one frees its slot", () =>
    Effect.sync(() => {
      const limits = ClientLimits.make({ ...options, ratePerSecond: 0 }, () => 0)
      const a = exchange("10.0.0.1")
      const b = exchange("10.0.0.1")
      const c = exchange("10.0.0.1")
      assert.isTrue(limits.admit(a.req, a.res))
      assert.isTrue(limits.admit(b.req, b.res))
      assert.isFalse(limits.admit(c.req, c.res))
      assert.strictEqual(c.written.status, 429)
      assert.strictEqual(c.written.headers?.["retry-after"], "1")
      assert.strictEqual(JSON.parse(c.written.body!).error.code, "too_many_concurrent_requests")
      // Another client is not affected.
      const other = exchange("10.0.0.2")
      assert.isTrue(limits.admit(other.req, other.res))
      a.close()
      const d = exchange("10.0.0.1")
      assert.isTrue(limits.admit(d.req, d.res))
    }))

  it.effect("rate: a burst, then refusals with a Retry-After, then tokens come back at the rate", () =>
    Effect.sync(() => {
      let now = 1_000_000
      const limits = ClientLimits.make({ ...options, maxConcurrent: 0 }, () => now)
      for (let i = 0; i < 5; i++) assert.isTrue(limits.admit(exchange("10.0.0.1").req, exchange("10.0.0.1").res), `burst ${i}`)
      const refused = exchange("10.0.0.1")
      assert.isFalse(limits.admit(refused.req, refused.res))
      assert.strictEqual(refused.written.status, 429)
      assert.strictEqual(JSON.parse(refused.written.body!).error.code, "rate_limited")
      assert.strictEqual(refused.written.headers?.["retry-after"], "1")
      assert.strictEqual(refused.written.headers?.["cache-control"], "no-store")
      now += 100 // 10/s: one token back
      assert.isTrue(limits.admit(exchange("10.0.0.1").req, exchange("10.0.0.1").res))
      assert.isFalse(limits.admit(exchange("10.0.0.1").req, exchange("10.0.0.1").res))
      // Exempt paths pass whatever the bucket holds.
      assert.isTrue(limits.admit(exchange("10.0.0.1", "/health/live").req, exchange("10.0.0.1").res))
      // What was admitted is handed to the cluster sync once.
      assert.deepStrictEqual([...limits.takePending()], [["10.0.0.1", 6]])
      assert.strictEqual(limits.takePending().size, 0)
    }))

  it.effect("a client blocked by the shared window is refused until the window ends", () =>
    Effect.sync(() => {
      let now = 0
      const limits = ClientLimits.make({ ...options, maxConcurrent: 0 }, () => now)
      limits.block("10.0.0.9", 2_500)
      const refused = exchange("10.0.0.9")
      assert.isFalse(limits.admit(refused.req, refused.res))
      assert.strictEqual(refused.written.headers?.["retry-after"], "3")
      now = 2_500
      assert.isTrue(limits.admit(exchange("10.0.0.9").req, exchange("10.0.0.9").res))
    }))

  it.effect("tracking is bounded: idle clients are dropped, and newcomers share one bucket when all are active", () =>
    Effect.sync(() => {
      let now = 0
      const limits = ClientLimits.make({ ...options, maxClients: 2 }, () => now)
      const held = [exchange("10.0.0.1"), exchange("10.0.0.2")]
      for (const h of held) assert.isTrue(limits.admit(h.req, h.res))
      // Both slots active: the newcomers share the overflow bucket (2 in flight at most between them).
      const n1 = exchange("10.0.0.3")
      const n2 = exchange("10.0.0.4")
      const n3 = exchange("10.0.0.5")
      assert.isTrue(limits.admit(n1.req, n1.res))
      assert.isTrue(limits.admit(n2.req, n2.res))
      assert.isFalse(limits.admit(n3.req, n3.res))
      assert.isAtMost(limits.tracked(), 3)
      for (const h of [...held, n1, n2]) h.close()
      now += 10_000 // buckets refilled: everyone idle
      limits.sweep()
      assert.strictEqual(limits.tracked(), 0)
    }))

  it.effect("client keys: IPv4-mapped addresses and IPv6 /64s; X-Forwarded-For only with trusted hops", () =>
    Effect.sync(() => {
      assert.strictEqual(ClientLimits.clientKey("::ffff:10.1.2.3"), "10.1.2.3")
      assert.strictEqual(ClientLimits.clientKey("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64")
      assert.strictEqual(ClientLimits.clientKey("2001:db8:0:1:ffff:ffff:ffff:2"), "2001:db8:0:1::/64")
      assert.strictEqual(ClientLimits.clientKey("2001:db8::1"), "2001:db8:0:0::/64")
      assert.strictEqual(ClientLimits.clientKey("::1"), "0:0:0:0::/64")
      const { req } = exchange("10.0.0.1", "/", { "x-forwarded-for": "203.0.113.7, 198.51.100.2" })
      assert.strictEqual(ClientLimits.clientAddress(req, 0), "10.0.0.1", "the header is ignored without trusted proxies")
      assert.strictEqual(ClientLimits.clientAddress(req, 1), "198.51.100.2")
      assert.strictEqual(ClientLimits.clientAddress(req, 2), "203.0.113.7")
      assert.strictEqual(ClientLimits.clientAddress(req, 3), "10.0.0.1", "fewer entries than hops: the socket")
    }))

  it.effect("defaults: 64 in flight, 200/s with bursts of 400; CLIENT_LIMITS=off lifts both", () =>
    Effect.gen(function*() {
      const defaults = yield* Effect.withConfigProvider(ClientLimitsConfig, ConfigProvider.fromMap(new Map()))
      assert.deepStrictEqual(
        [defaults.maxConcurrent, defaults.ratePerSecond, defaults.burst, defaults.trustProxyHops],
        [64, 200, 400, 0]
      )
      const off = yield* Effect.withConfigProvider(
        ClientLimitsConfig,
        ConfigProvider.fromMap(new Map([["CLIENT_LIMITS", "off"]]))
      )
      assert.deepStrictEqual([off.maxConcurrent, off.ratePerSecond], [0, 0])
    }))
})

let run = 0
const unique = () => `l${process.pid}_${Date.now().toString(36)}_${run++}`

describe("client limits: through the gateway", () => {
  it.scopedLive("a client over its concurrency bound gets 429 with Retry-After and a JSON error; others are served", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ CLIENT_LIMITS: "on", CLIENT_MAX_CONCURRENT: "3", CLIENT_RATE_PER_SEC: "0" })
      // Slow enough upstream that all eight are in flight together, even on a busy machine.
      yield* sim.setFaults({ latency: { kind: "fixed", ms: 2_000 } })
      const ids = sim.corpus.items.filter((i) => i.access === "free").slice(0, 8).map((i) => i.id)
      const answers = yield* Effect.promise(() => Promise.all(ids.map((id) => request(`/content/${id}?include_content=false`))))
      const refused = answers.filter((a) => a.status === 429)
      assert.strictEqual(answers.filter((a) => a.status === 200).length, 3)
      assert.strictEqual(refused.length, 5)
      for (const r of refused) {
        assert.strictEqual(r.body.error.code, "too_many_concurrent_requests")
        assert.strictEqual(r.headers.get("retry-after"), "1")
      }
      // Refused requests cost nothing upstream; once the three finished, the client is served again.
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 3)
      const again = yield* Effect.promise(() => request(`/content/${ids[7]}?include_content=false`))
      assert.strictEqual(again.status, 200)
    }), 30_000)

  it.scopedLive("rate: memory hits count too; behind one trusted proxy each forwarded client has its own bucket", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({
        CLIENT_LIMITS: "on",
        CLIENT_MAX_CONCURRENT: "0",
        CLIENT_RATE_PER_SEC: "1",
        CLIENT_RATE_BURST: "4",
        HTTP_TRUST_PROXY_HOPS: "1"
      })
      const id = sim.corpus.items.find((i) => i.access === "free")!.id
      const as = (client: string) => ({ headers: { "x-forwarded-for": client } })
      const statuses = []
      for (let i = 0; i < 6; i++) {
        statuses.push((yield* Effect.promise(() => request(`/content/${id}?include_content=false`, as("203.0.113.1")))).status)
      }
      assert.deepStrictEqual(statuses, [200, 200, 200, 200, 429, 429])
      const other = yield* Effect.promise(() => request(`/content/${id}?include_content=false`, as("203.0.113.2")))
      assert.strictEqual(other.status, 200)
      assert.strictEqual(other.headers.get("x-cache"), "HIT-MEMORY")
      const probe = yield* Effect.promise(() => request("/health/live", as("203.0.113.1")))
      assert.strictEqual(probe.status, 200, "probes are never limited")
    }), 30_000)

  it.scopedLive("with Redis, the rate bound holds across instances", () =>
    Effect.gen(function*() {
      const shared = {
        CLIENT_LIMITS: "on",
        CLIENT_MAX_CONCURRENT: "0",
        CLIENT_RATE_PER_SEC: "1",
        CLIENT_RATE_BURST: "5",
        CLIENT_LIMITS_SYNC_MS: "20",
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`
      }
      const a = yield* startGateway(shared)
      const b = yield* startGateway(shared)
      const id = a.sim.corpus.items.find((i) => i.access === "free")!.id
      for (let i = 0; i < 5; i++) {
        const res = yield* Effect.promise(() => a.request(`/content/${id}?include_content=false`))
        assert.strictEqual(res.status, 200)
      }
      // B's own bucket is full, but the shared window is spent once A has synced (every 20 ms).
      yield* Effect.sleep("300 millis")
      const first = yield* Effect.promise(() => b.request(`/content/${id}?include_content=false`))
      yield* Effect.sleep("300 millis")
      const second = yield* Effect.promise(() => b.request(`/content/${id}?include_content=false`))
      assert.strictEqual(second.status, 429, `B after A spent the window (first answer ${first.status})`)
      assert.strictEqual(second.body.error.code, "rate_limited")
      assert.isAtLeast(Number(second.headers.get("retry-after")), 1)
    }), 30_000)
})
