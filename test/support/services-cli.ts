/**
 * `npm run services`: starts a private redis-server and PostgreSQL for development, prints
 * `REDIS_URL=…` and `DATABASE_URL=…` on stdout, and keeps them up until Ctrl-C (or SIGTERM),
 * then stops them and removes their directories.
 */
import { startPostgres, startRedis, stopAll } from "./services.js"

const [redis, postgres] = await Promise.allSettled([startRedis(), startPostgres()])
if (redis.status === "rejected" || postgres.status === "rejected") {
  await stopAll()
  for (const r of [redis, postgres]) {
    if (r.status === "rejected") console.error(`[services] ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`)
  }
  process.exit(1)
}

console.error(`[services] redis-server ${redis.value.version} at ${redis.value.url} (dir ${redis.value.dir})`)
console.error(`[services] PostgreSQL ${postgres.value.version} at ${postgres.value.url} (dir ${postgres.value.dir})`)
console.log(`REDIS_URL=${redis.value.url}`)
console.log(`DATABASE_URL=${postgres.value.url}`)
console.error("[services] up; press Ctrl-C to stop")

const keepAlive = setInterval(() => {}, 1 << 30)
let exiting = false
const shutdown = (signal: NodeJS.Signals) => {
  if (exiting) return
  exiting = true
  console.error(`[services] ${signal}: stopping`)
  void stopAll().then(() => {
    clearInterval(keepAlive)
    console.error("[services] stopped, directories removed")
    process.exit(0)
  })
}
process.on("SIGINT", shutdown)
process.on("SIGTERM", shutdown)
process.on("SIGHUP", shutdown)
