/**
 * Vitest global setup: one shared redis-server and one shared PostgreSQL for the whole run.
 *
 * Their URLs and versions reach specs through `inject("redisUrl")`, `inject("databaseUrl")`,
 * `inject("redisVersion")` and `inject("postgresVersion")` (typed in `./provided.ts`). The servers
 * are stopped by the returned teardown, which vitest runs whether tests passed or failed; if vitest
 * is interrupted instead, `services.ts` kills them on process exit (see its module comment).
 */
import type { TestProject } from "vitest/node"
import type {} from "./provided.js"
import { startPostgres, startRedis, type ServerHandle } from "./services.js"

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [redis, postgres] = await Promise.allSettled([startRedis(), startPostgres()])
  const started = [redis, postgres].flatMap((r) => (r.status === "fulfilled" ? [r.value as ServerHandle] : []))
  if (redis.status === "rejected" || postgres.status === "rejected") {
    await Promise.allSettled(started.map((s) => s.stop()))
    throw redis.status === "rejected" ? redis.reason : (postgres as PromiseRejectedResult).reason
  }
  project.provide("redisUrl", redis.value.url)
  project.provide("redisVersion", redis.value.version)
  project.provide("databaseUrl", postgres.value.url)
  project.provide("postgresVersion", postgres.value.version)
  console.log(`[services] redis-server ${redis.value.version} at ${redis.value.url}`)
  console.log(`[services] PostgreSQL ${postgres.value.version} at ${postgres.value.url}`)
  return async () => {
    await Promise.allSettled(started.map((s) => s.stop()))
  }
}
