/**
 * Which cache partition a caller belongs to. Two callers share cached content only when Drupal
 * says they see the same things: equal `access_level` and equal `permissions_hash` from the
 * site's `user.access_context` method. A site without that method (it answers -32601) gets a
 * partition per token fingerprint for signed-in callers, which is always safe. Anonymous callers
 * share one partition.
 *
 * The token → partition mapping is itself cached briefly (memory and Redis, never PostgreSQL)
 * under the token's fingerprint, never the token; a synchronous copy serves the hit path.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { AccessConfig } from "../Config.js"
import { type CachePolicy, TieredCacheService } from "../cache/TieredCache.js"
import type { Credentials } from "../drupal/Credentials.js"
import { type DrupalError, JsonRpcCode } from "../drupal/DrupalError.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"

/** A caller's partition. `id` goes into cache keys; `level` into logs. */
export interface Partition {
  /** `anon`, `lvl:<level>:<permissions hash prefix>`, or `tok:<token fingerprint>`. */
  readonly id: string
  /** The access level Drupal reported (`anonymous`, `free`, `subscriber`, `admin`, …) or `token`. */
  readonly level: string
}

/** The anonymous partition. */
export const anonymousPartition: Partition = { id: "anon", level: "anonymous" }

const AccessContext = Schema.Struct({
  access_level: Schema.String.pipe(Schema.pattern(/^[a-z0-9_-]{1,32}$/)),
  permissions_hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{8,128}$/i))
})

/** The service. */
export interface AccessScope {
  /** The caller's partition (cached; one upstream call per token per TTL at most). */
  readonly partition: (credentials: Credentials) => Effect.Effect<Partition, DrupalError>
  /** The partition if known right now, without any I/O (for the synchronous hit path). */
  readonly partitionSync: (credentials: Credentials) => Partition | undefined
}

/** Tag of the service. */
export const AccessScope = Context.GenericTag<AccessScope>("accelerator/AccessScope")

/** Options of {@link make}. */
export interface AccessScopeOptions {
  readonly ttl: Duration.DurationInput
  /** Most token mappings held for the synchronous path. */
  readonly maxTokens: number
}

const isMethodMissing = (error: DrupalError): boolean =>
  (error._tag === "DrupalHttpError" && error.rpcError?.code === JsonRpcCode.MethodNotFound) ||
  (error._tag === "DrupalRpcError" && error.code === JsonRpcCode.MethodNotFound)

/** Creates the service. */
export const make = (options: AccessScopeOptions) =>
  Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const cache = yield* TieredCacheService
    const ttlMs = Duration.toMillis(options.ttl)
    const policy: CachePolicy = {
      fresh: options.ttl,
      grace: Duration.zero,
      jitter: 0,
      negative: Duration.zero,
      softTimeout: Duration.seconds(5),
      hardTimeout: Duration.seconds(15),
      remote: { redis: true, postgres: false }
    }
    // fingerprint → partition and expiry, insertion order = recency.
    const known = new Map<string, { readonly partition: Partition; readonly until: number }>()
    const remember = (fingerprint: string, partition: Partition, now: number) => {
      known.delete(fingerprint)
      known.set(fingerprint, { partition, until: now + ttlMs })
      while (known.size > options.maxTokens) known.delete(known.keys().next().value!)
    }

    const lookup = (credentials: Credentials) =>
      rpc.call("user.access_context", undefined, credentials).pipe(
        Effect.flatMap((result) => Effect.option(Schema.decodeUnknown(AccessContext)(result))),
        Effect.map((context): Partition =>
          Option.match(context, {
            // A reply we cannot read: fall back to the always-safe partition per token.
            onNone: () => ({ id: `tok:${credentials.fingerprint.slice(2)}`, level: "token" }),
            onSome: (c) => ({ id: `lvl:${c.access_level}:${c.permissions_hash.slice(0, 16).toLowerCase()}`, level: c.access_level })
          })
        ),
        Effect.catchIf(isMethodMissing, () => Effect.succeed<Partition>({ id: `tok:${credentials.fingerprint.slice(2)}`, level: "token" })),
        Effect.map((partition) => ({
          value: new TextEncoder().encode(JSON.stringify(partition)),
          contentType: "application/json",
          tags: ["scope"]
        }))
      )

    const partition = (credentials: Credentials): Effect.Effect<Partition, DrupalError> => {
      if (Option.isNone(credentials.authorization)) return Effect.succeed(anonymousPartition)
      return Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const cached = known.get(credentials.fingerprint)
        if (cached !== undefined && cached.until > now) return cached.partition
        const hit = yield* cache.getOrSet(`scope:${credentials.fingerprint}`, lookup(credentials), policy).pipe(
          Effect.catchTag("LoadTimeout", () => Effect.die("access context lookup timed out"))
        )
        const found = JSON.parse(new TextDecoder().decode(hit.entry.value)) as Partition
        remember(credentials.fingerprint, found, now)
        return found
      })
    }

    const partitionSync = (credentials: Credentials): Partition | undefined => {
      if (Option.isNone(credentials.authorization)) return anonymousPartition
      const cached = known.get(credentials.fingerprint)
      return cached !== undefined && cached.until > Date.now() ? cached.partition : undefined
    }

    return AccessScope.of({ partition, partitionSync })
  })

/** The service from `AccessConfig`. */
export const layerConfig = Layer.effect(AccessScope, Effect.flatMap(AccessConfig, make))
