/**
 * Helpers for the simulator specs: start a small simulator on a free port in the test scope,
 * and talk to it over real HTTP.
 */
import { Effect } from "effect"
import * as Simulator from "../../src/simulator/Simulator.js"

/**
 * Options of a small, fast simulator (300 items, no large items); override as needed.
 *
 * The cost model is turned OFF here, explicitly: these specs check what the site answers, byte
 * for byte, and some time latency faults; the model's own specs (Cost.test.ts) turn it on.
 */
export const smallOptions = (overrides: Partial<Simulator.SimulatorOptions> = {}): Simulator.SimulatorOptions => ({
  port: 0,
  corpusSize: 300,
  seed: 7,
  largeShare: 0,
  ...overrides,
  cost: { enabled: false, ...overrides.cost }
})

/** A simulator in the current scope. */
export const start = (overrides: Partial<Simulator.SimulatorOptions> = {}) => Simulator.make(smallOptions(overrides))

/** A reply read in full. */
export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

/** Parses the reply body as JSON (dies when it is not JSON). */
export const json = (reply: Reply): any => JSON.parse(reply.text)

/** One HTTP exchange; fails with the fetch error (connection reset, timeout, …). */
export const tryFetch = (url: string, init: RequestInit = {}) =>
  Effect.tryPromise({
    try: async (): Promise<Reply> => {
      const res = await fetch(url, init)
      return { status: res.status, headers: res.headers, text: await res.text() }
    },
    catch: (cause) => cause
  })

/** One HTTP exchange that must succeed at the transport level. */
export const fetchReply = (url: string, init: RequestInit = {}) => Effect.orDie(tryFetch(url, init))

/** `POST <sim>/jsonrpc` with a JSON value (or raw text) as body. */
export const post = (sim: Simulator.Simulator, body: unknown, headers: Record<string, string> = {}) =>
  fetchReply(`${sim.url}/jsonrpc`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

/** `GET <sim><path>`. */
export const get = (sim: Simulator.Simulator, path: string, headers: Record<string, string> = {}) =>
  fetchReply(`${sim.url}${path}`, { headers })

/** `GET <sim>/jsonrpc?query=<url-encoded JSON>`. */
export const getRpc = (sim: Simulator.Simulator, body: unknown, headers: Record<string, string> = {}) =>
  get(sim, `/jsonrpc?query=${encodeURIComponent(JSON.stringify(body))}`, headers)

/** A request item. */
export const call = (method: string, params?: Record<string, unknown>, id: number | string | null = 1) => ({
  jsonrpc: "2.0",
  method,
  ...(params === undefined ? {} : { params }),
  ...(id === null ? {} : { id })
})

/** Bearer header of a demo user. */
export const bearer = (who: keyof typeof Simulator.DEMO_TOKENS) => ({
  Authorization: `Bearer ${Simulator.DEMO_TOKENS[who]}`
})
