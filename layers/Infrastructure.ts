/**
 * Connections to the optional backing services: Redis when `REDIS_URL` is set, PostgreSQL when
 * `DATABASE_URL` is set. Without them the layers are empty and the gateway runs on the memory
 * tier alone.
 */
import { Effect, Layer, Option } from "effect"
import * as Postgres from "../src/postgres/Postgres.js"
import * as Redis from "../src/redis/Redis.js"

/** Redis adapter, if configured. */
export const RedisLive = Layer.unwrapEffect(
  Effect.map(Redis.configured, Option.match({ onNone: () => Layer.empty, onSome: Redis.layer }))
)

/** PostgreSQL client and pool, if configured. */
export const PostgresLive = Layer.unwrapEffect(
  Effect.map(Postgres.configured, Option.match({ onNone: () => Layer.empty, onSome: Postgres.layer }))
)

/** Both, each only when configured. */
export const InfrastructureLive = Layer.merge(RedisLive, PostgresLive)
