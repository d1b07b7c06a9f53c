/**
 * The whole system of a fault program: real Redis and PostgreSQL (test harness starter), the
 * simulator in its own process, and gateway processes sharing them.
 */
import { type PostgresServer, type RedisServer, startPostgres, startRedis } from "../../test/support/services.js"
import { BENCH_FINGERPRINT_SECRET, findFreePort, type Gateway, startGateway, startSimulator } from "./processes.js"
import { type CorpusSettings, simulatorEnv } from "./workload.js"

export const ADMIN_TOKEN = "bench-admin-token"
/** Standard Webhooks secret (`whsec_` + base64 of 32 bytes). */
export const WEBHOOK_SECRET = "whsec_" + Buffer.alloc(32, 66).toString("base64")
/** Key of the token fingerprints, shared by every instance of the stack. */
export const FINGERPRINT_SECRET = BENCH_FINGERPRINT_SECRET

export interface StackOptions {
  readonly corpus: CorpusSettings
  /** Extra SIM_* keys (latency). */
  readonly simulatorEnv: Record<string, string>
  /** Extra gateway keys. */
  readonly gatewayEnv: Record<string, string>
}

export const startStack = async (options: StackOptions) => {
  console.error("[bench] starting redis-server and PostgreSQL")
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]) as [RedisServer, PostgresServer]
  console.error(`[bench] redis-server ${redis.version} at ${redis.url}; PostgreSQL ${postgres.version} at ${postgres.url}`)
  const simPort = await findFreePort()
  const simEnv = { ...simulatorEnv(options.corpus), ...options.simulatorEnv }
  let simulator = await startSimulator({ port: simPort, env: simEnv })
  console.error(`[bench] simulator at ${simulator.url}`)
  const gatewayEnv: Record<string, string> = {
    DRUPAL_URL: simulator.url,
    REDIS_URL: redis.url,
    DATABASE_URL: postgres.url,
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
    FINGERPRINT_SECRET,
    // Explicit, so the tier scans (bench/harness/tiers.ts) know it; the default is per site.
    CACHE_REDIS_PREFIX: "da:",
    ...options.gatewayEnv
  }
  const gateways: Array<Gateway> = []
  const addGateway = async (name: string, port?: number) => {
    const gw = await startGateway({ name, port: port ?? await findFreePort(), env: gatewayEnv })
    gateways.push(gw)
    console.error(`[bench] ${name} at ${gw.url} (pid ${gw.proc.child.pid})`)
    return gw
  }
  return {
    redis,
    postgres,
    get simulator() {
      return simulator
    },
    simEnv,
    gatewayEnv,
    gateways,
    addGateway,
    /** Restarts the simulator on the same port (same corpus, no faults). */
    restartSimulator: async () => {
      simulator = await startSimulator({ port: simPort, env: simEnv })
      return simulator
    },
    simStats: async (): Promise<any> => {
      const res = await fetch(`${simulator.url}/__sim/stats`, { signal: AbortSignal.timeout(5_000) })
      return res.json()
    },
    setFaults: async (patch: Record<string, unknown>) => {
      const res = await fetch(`${simulator.url}/__sim/faults`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(patch),
        signal: AbortSignal.timeout(5_000)
      })
      if (res.status >= 300) throw new Error(`POST /__sim/faults answered ${res.status}: ${await res.text()}`)
      return res.json()
    }
  }
}
export type Stack = Awaited<ReturnType<typeof startStack>>
