/**
 * The `admin` group served on its own (on a free port, over an in-memory tiered cache the spec
 * can seed and inspect), configured through a `ConfigProvider`, with its log lines captured.
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ConfigProvider, Context, Effect, Layer, Logger, Redacted } from "effect"
import { createServer } from "node:http"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { AdminOnlyApi } from "../../src/http/AdminApi.js"
import { AdminHandlers } from "../../src/http/AdminHandlers.js"
import * as RedisAdapter from "../../src/redis/Redis.js"

/** One captured log line. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** An HTTP answer, its body parsed as JSON when it is JSON. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

/** A cache policy long enough that nothing expires during a spec. */
export const policy: TieredCache.CachePolicy = {
  fresh: "10 minutes",
  grace: "10 minutes",
  jitter: 0,
  negative: "10 seconds",
  softTimeout: "1 second",
  hardTimeout: "5 seconds"
}

/** A Standard Webhooks secret for specs (`whsec_` + base64 of 32 bytes). */
export const WEBHOOK_SECRET = "whsec_" + Buffer.alloc(32, 42).toString("base64")

/**
 * Starts the admin API in the current scope. `config` is the whole configuration; with
 * `redisUrl`, a Redis adapter is in context (the webhook then keeps delivery ids in Redis).
 */
export const serveAdmin = (config: Record<string, string>, redisUrl?: string) =>
  Effect.gen(function*() {
    const memory = yield* MemoryTier.make()
    const cache = yield* TieredCache.make({ memory, writeQueueCapacity: 100, writeBatchSize: 10, invalidationMemory: 100 })
    const logs: Array<LogLine> = []
    const capture = Logger.make(({ annotations, logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      logs.push({ level: logLevel.label, message: text, annotations: Object.fromEntries(annotations) })
    })
    const context = yield* Layer.build(
      HttpApiBuilder.serve().pipe(
        Layer.provide(HttpApiBuilder.api(AdminOnlyApi).pipe(Layer.provide(AdminHandlers))),
        Layer.provide(Layer.succeed(TieredCache.TieredCache, cache)),
        Layer.provide(
          redisUrl === undefined
            ? Layer.empty
            : RedisAdapter.layer({ url: Redacted.make(redisUrl), connectTimeout: "1 second", commandTimeout: "250 millis", connectionName: "webhook-spec" })
        ),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config))))),
        Layer.provide(Logger.replace(Logger.defaultLogger, capture))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
    const request = (path: string, init: RequestInit = {}): Effect.Effect<Answer> =>
      Effect.promise(async () => {
        const res = await fetch(base + path, { method: "POST", ...init })
        const text = await res.text()
        let body: unknown = undefined
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
        return { status: res.status, headers: res.headers, body }
      })
    /** Whether `key` is cached now. */
    const has = (key: string) => Effect.map(cache.get(key), (hit) => hit._tag === "Some")
    /** Caches `key` with `tags`. */
    const seed = (key: string, tags: ReadonlyArray<string>) =>
      cache.set(key, { value: new TextEncoder().encode(`{"key":"${key}"}`), contentType: "application/json", tags }, policy)
    return { base, cache, request, has, seed, logs }
  })
