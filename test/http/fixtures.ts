/**
 * The whole gateway (`layers/Gateway.ts`, as `npm start` builds it) on a free port, pointed at a
 * simulator the spec controls, configured through a `ConfigProvider` instead of the environment.
 */
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import { GatewayLive } from "../../layers/Gateway.js"
import * as Simulator from "../../src/simulator/Simulator.js"
import { findFreePort } from "../support/services.js"

/** A running gateway and the simulator behind it. */
export interface GatewayUnderTest {
  readonly base: string
  readonly sim: Simulator.Simulator
  /** GET (or any method) against the gateway; the body parsed as JSON when it is JSON. */
  readonly request: (path: string, init?: RequestInit) => Promise<{ status: number; headers: Headers; body: any; text: string }>
}

/** The deployment secret every gateway of a spec shares (required once Redis or PostgreSQL is configured). */
export const FINGERPRINT_SECRET = "spec-fingerprint-secret-0123456789abcdef"

/** Starts a simulator and the gateway in the current scope. `config` overrides gateway keys. */
export const startGateway = (
  config: Record<string, string> = {},
  simulator: Partial<Simulator.SimulatorOptions> = {}
) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.make({ port: 0, corpusSize: 300, seed: 7, largeShare: 0, ...simulator })
    const port = yield* Effect.promise(() => findFreePort())
    const provider = ConfigProvider.fromMap(
      // Every spec's traffic comes from one loopback address: the per-client bounds are lifted
      // unless a spec sets them (test/limits/). Every gateway of a spec serves "the same site"
      // (a restart, a second instance), although each simulator listens on a port of its own.
      new Map(Object.entries({ PORT: String(port), HOST: "127.0.0.1", DRUPAL_URL: sim.url, FINGERPRINT_SECRET, CLIENT_LIMITS: "off", CACHE_SITE_ID: "spec", ...config }))
    )
    yield* Layer.build(
      GatewayLive.pipe(
        Layer.provide(Layer.setConfigProvider(provider)),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
      )
    )
    const base = `http://127.0.0.1:${port}`
    const request: GatewayUnderTest["request"] = async (path, init) => {
      const res = await fetch(base + path, init)
      const text = await res.text()
      let body: unknown = undefined
      try {
        body = JSON.parse(text)
      } catch {
        body = undefined
      }
      return { status: res.status, headers: res.headers, body, text }
    }
    return { base, sim, request } satisfies GatewayUnderTest
  })
