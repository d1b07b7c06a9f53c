/**
 * Clients that give up must never take the gateway down. Bursts of concurrent streamed requests
 * (`/content/{id}/markdown`) against a slow upstream are abandoned at different moments: before
 * the metadata call answers, while the upstream stream is opening, and after the first bytes of
 * a large body. The process must survive every burst and keep answering.
 */
import { assert, describe, it } from "@effect/vitest"
import http from "node:http"
import { Effect } from "effect"
import { startGatewayProcess } from "./gatewayProcess.js"

const HUGE_ITEM = 7

/** Deterministic abandon moments (ms), spread over the life of a request. */
const moments = (seed: number, count: number, maxMs: number): Array<number> => {
  let state = seed >>> 0
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return 5 + (state % maxMs)
  })
}

/** Sends one request and destroys it after `afterMs`, or after its first body bytes when `onFirstBytes`. */
const abandon = (port: number, path: string, afterMs: number, onFirstBytes: boolean) =>
  new Promise<void>((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path }, (res) => {
      res.on("error", () => {})
      res.once("data", () => {
        if (onFirstBytes) req.destroy()
      })
      res.on("close", () => resolve())
    })
    req.on("error", () => resolve())
    req.on("close", () => resolve())
    setTimeout(() => req.destroy(), afterMs)
  })

describe("clients that abandon streamed requests", () => {
  it.scopedLive("bursts of 200 abandoned Markdown requests against a slow upstream leave the process up", () =>
    Effect.gen(function*() {
      const gateway = yield* startGatewayProcess({
        SIM_CORPUS_SIZE: "1000",
        SIM_LATENCY: "lognormal",
        SIM_LATENCY_MEAN_MS: "80",
        SIM_LATENCY_P99_MS: "250",
        SIM_HUGE_ITEM_ID: String(HUGE_ITEM),
        SIM_HUGE_ITEM_BYTES: String(8 * 1024 * 1024)
      })
      // Time to the first byte of a whole answer, so the abandon moments cover the metadata call,
      // the opening of the upstream stream and the body, whatever the machine's load.
      const started = Date.now()
      yield* Effect.promise(() => Promise.all([11, 12, 13, 14].map((id) =>
        fetch(`http://127.0.0.1:${gateway.port}/content/${id}/markdown`).then((res) => res.text())
      )))
      const whole = Math.max(50, Date.now() - started)
      for (let round = 1; round <= 6; round++) {
        const at = moments(round, 200, Math.round(whole * (0.5 + round / 2)))
        yield* Effect.promise(() =>
          Promise.all(at.map((ms, i) => {
            // One in ten asks the large item and hangs up after its first bytes.
            const large = i % 10 === 0
            return abandon(gateway.port, `/content/${large ? HUGE_ITEM : 20 + ((round * 200 + i) % 980)}/markdown`, large ? 5_000 : ms, large)
          }))
        )
        assert.isNull(gateway.child.exitCode, `the gateway exited after round ${round}:\n${gateway.lines.slice(-20).join("\n")}`)
      }
      // Answers still arriving from the upstream for abandoned requests land after the bursts.
      yield* Effect.sleep("1500 millis")
      assert.isNull(gateway.child.exitCode, `the gateway exited:\n${gateway.lines.slice(-20).join("\n")}`)
      const unhandled = gateway.lines.filter((l) => l.includes("Unhandled") || l.includes("AbortError"))
      assert.deepStrictEqual(unhandled, [])

      const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${gateway.port}/health`))
      assert.strictEqual(health.status, 200)
      const after = yield* Effect.promise(async () => {
        const res = await fetch(`http://127.0.0.1:${gateway.port}/content/${HUGE_ITEM}/markdown`)
        return { status: res.status, text: await res.text() }
      })
      assert.strictEqual(after.status, 200)
      assert.isAbove(after.text.length, 1_000_000)
    }), { timeout: 90_000 })
})
