/**
 * Liveness and readiness. Readiness probes every configured dependency (the Drupal upstream,
 * Redis when `REDIS_URL` is set, PostgreSQL when `DATABASE_URL` is set), each bounded by
 * `HEALTH_PROBE_TIMEOUT_MS`, all in parallel; the report is reused for `HEALTH_CACHE_MS` so a
 * hard-polled `/health` costs the dependencies at most one probe each per period.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schema } from "effect"
import { request } from "undici"
import { HealthConfig } from "../Config.js"
import { DrupalEndpoint, endpointUrl } from "../drupal/DrupalEndpoint.js"
import { Redis } from "../redis/Redis.js"

/** One dependency's probe result. */
export const DependencyStatus = Schema.Struct({
  name: Schema.Literal("drupal", "redis", "postgres"),
  ready: Schema.Boolean,
  latency_ms: Schema.Number,
  detail: Schema.optional(Schema.String)
})
export type DependencyStatus = typeof DependencyStatus.Type

/** The body of `GET /health`. */
export const HealthReport = Schema.Struct({
  status: Schema.Literal("ok", "unavailable"),
  uptime_seconds: Schema.Number,
  checked_at: Schema.String,
  dependencies: Schema.Array(DependencyStatus)
})
export type HealthReport = typeof HealthReport.Type

type Probe = { readonly name: DependencyStatus["name"]; readonly run: Effect.Effect<string | undefined, unknown> }

const describe = (error: unknown): string => {
  if (error instanceof Error) return error.message.slice(0, 200)
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message).slice(0, 200)
  return String(error).slice(0, 200)
}

const timed = (probe: Probe, timeout: Duration.Duration): Effect.Effect<DependencyStatus> =>
  Effect.gen(function*() {
    const start = performance.now()
    const result = yield* probe.run.pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`no answer within ${Duration.format(timeout)}`) }),
      Effect.either
    )
    const latency_ms = Math.round((performance.now() - start) * 100) / 100
    if (result._tag === "Left") return { name: probe.name, ready: false, latency_ms, detail: describe(result.left) }
    return result.right === undefined
      ? { name: probe.name, ready: true, latency_ms }
      : { name: probe.name, ready: true, latency_ms, detail: result.right }
  })

/** Readiness of the gateway's dependencies. */
export class Health extends Effect.Service<Health>()("accelerator/Health", {
  effect: Effect.gen(function*() {
    const config = yield* HealthConfig
    const endpoint = yield* DrupalEndpoint
    const redis = yield* Effect.serviceOption(Redis)
    const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
    const startedAt = Date.now()

    const probes: Array<Probe> = [{
      name: "drupal",
      // Any HTTP answer from the discovery route proves the upstream is up; a 401/403 page
      // only means anonymous callers may not list methods on this site.
      run: Effect.tryPromise(async (signal) => {
        const res = await request(endpointUrl(endpoint.url, "/jsonrpc/methods"), { method: "GET", signal })
        await res.body.dump()
        if (res.statusCode >= 500) throw new Error(`HTTP ${res.statusCode}`)
        return endpoint.embedded ? "embedded simulator" : undefined
      })
    }]
    if (Option.isSome(redis)) {
      probes.push({ name: "redis", run: Effect.asVoid(redis.value.use("PING", (c) => c.ping())).pipe(Effect.as(undefined)) })
    }
    if (Option.isSome(sql)) {
      probes.push({ name: "postgres", run: sql.value`SELECT 1`.pipe(Effect.as(undefined)) })
    }

    const probeAll = Effect.map(
      Effect.forEach(probes, (p) => timed(p, config.probeTimeout), { concurrency: "unbounded" }),
      (dependencies): HealthReport => ({
        status: dependencies.every((d) => d.ready) ? "ok" : "unavailable",
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        checked_at: new Date().toISOString(),
        dependencies
      })
    )
    const report = yield* Effect.cachedWithTTL(probeAll, config.cacheFor)
    return {
      /** The readiness report (reused for `HEALTH_CACHE_MS`). */
      report
    } as const
  })
}) {}
