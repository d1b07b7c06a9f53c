/**
 * A bounded closed-loop load generator over undici: `connections` loops, each sending its next
 * request when the previous one ended, until `stop()` or the time/count bound. Every request is
 * recorded: start time, latency, status (0 = transport error, -1 = abandoned by us on purpose),
 * `X-Cache`, route kind, caller, and the checker's verdict on its body. Traffic goes to
 * 127.0.0.1 only.
 */
import { Pool } from "undici"
import { type Caller, CALLERS, type Kind, KINDS } from "./workload.js"

export const CACHE_STATES = ["", "HIT-MEMORY", "HIT-REDIS", "HIT-POSTGRES", "MISS", "STALE"] as const

/** Column-wise records (cheap for hundreds of thousands of requests). */
export class Records {
  t: Array<number> = []
  ms: Array<number> = []
  status: Array<number> = []
  cache: Array<number> = []
  kind: Array<number> = []
  caller: Array<number> = []
  key: Array<string> = []
  target: Array<number> = []
  violation: Array<string | undefined> = []
  /** The error code of a 5xx answer's JSON body (`error.code`), when it had one. */
  code: Array<string | undefined> = []
  push(r: { t: number; ms: number; status: number; cache: string; kind: Kind; caller: Caller; key: string; target: number; violation: string | undefined; code?: string | undefined }) {
    this.t.push(r.t)
    this.ms.push(r.ms)
    this.status.push(r.status)
    this.cache.push(Math.max(0, CACHE_STATES.indexOf(r.cache as never)))
    this.kind.push(KINDS.indexOf(r.kind))
    this.caller.push(CALLERS.indexOf(r.caller))
    this.key.push(r.key)
    this.target.push(r.target)
    this.violation.push(r.violation)
    this.code.push(r.code)
  }
  get length() {
    return this.t.length
  }
}

export interface LoadRequest {
  readonly path: string
  readonly caller: Caller
  readonly kind: Kind
  readonly id: number
  /** Abort the request after this many ms (a client that gives up); the record gets status -1. */
  readonly abandonAfterMs?: number
}

export interface LoadOptions {
  /** Base URLs; loop i targets `targets()[i % length]` at each request (read every time, so a restarted gateway is picked up). */
  readonly targets: () => ReadonlyArray<string>
  readonly connections: number
  readonly next: () => LoadRequest
  /** Hard bounds. */
  readonly maxSeconds: number
  readonly maxRequests: number
  readonly requestTimeoutMs: number
  /** Verdict on a 200 body; undefined = fine. */
  readonly check: (req: LoadRequest, body: string) => string | undefined
  readonly epoch: number
  readonly records: Records
}

const errorCodeOf = (body: string): string | undefined => {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code
    return typeof code === "string" ? code : undefined
  } catch {
    return undefined
  }
}

export const runLoad = (options: LoadOptions) => {
  const pools = new Map<string, Pool>()
  const poolOf = (origin: string) => {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, { connections: options.connections, pipelining: 1, keepAliveTimeout: 4_000, connect: { timeout: 2_000 } })
      pools.set(origin, pool)
    }
    return pool
  }
  let stopped = false
  let sent = 0
  const deadline = Date.now() + options.maxSeconds * 1000
  const loop = async (i: number) => {
    while (!stopped && Date.now() < deadline && sent < options.maxRequests) {
      sent++
      const targets = options.targets()
      const targetIndex = i % targets.length
      const origin = targets[targetIndex]!
      const req = options.next()
      const started = performance.now()
      const t = Date.now() - options.epoch
      const controller = new AbortController()
      const abandoned = req.abandonAfterMs !== undefined
      const timer = setTimeout(() => controller.abort(), req.abandonAfterMs ?? options.requestTimeoutMs)
      let status = 0
      let cache = ""
      let violation: string | undefined
      let code: string | undefined
      try {
        const res = await poolOf(origin).request({
          path: req.path,
          method: "GET",
          headers: req.caller.authorization === undefined ? {} : { authorization: req.caller.authorization },
          signal: controller.signal
        })
        const body = await res.body.text()
        status = res.statusCode
        cache = String(res.headers["x-cache"] ?? "")
        if (status === 200) violation = options.check(req, body)
        else if (status >= 500) code = errorCodeOf(body)
      } catch {
        status = controller.signal.aborted && abandoned ? -1 : 0
        if (status === 0 && !controller.signal.aborted) await new Promise((r) => setTimeout(r, 50)) // refused: do not spin
      } finally {
        clearTimeout(timer)
      }
      options.records.push({
        t,
        ms: performance.now() - started,
        status,
        cache,
        kind: req.kind,
        caller: req.caller,
        key: `${req.caller.name} ${req.path}`,
        target: targetIndex,
        violation,
        code
      })
    }
  }
  const done = Promise.all(Array.from({ length: options.connections }, (_, i) => loop(i))).then(async () => {
    await Promise.allSettled([...pools.values()].map((p) => p.destroy()))
  })
  return {
    done,
    stop: () => {
      stopped = true
      return done
    }
  }
}
