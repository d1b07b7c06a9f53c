/**
 * `npm start` as a newcomer runs it: the gateway process on the embedded default (built-in
 * simulator, memory only), then SIGTERM while a request is in flight.
 */
import { assert, describe, it } from "@effect/vitest"
import { once } from "node:events"
import { Effect } from "effect"
import { startGatewayProcess as startGateway } from "./gatewayProcess.js"

describe("npm start (embedded default)", () => {
  it.scopedLive("serves /health, says it uses the simulator, and the simulator answers on SIM_PORT", () =>
    Effect.gen(function*() {
      const { lines, port, simPort } = yield* startGateway()
      const firstLines = lines.slice(0, 3).map((l) => (JSON.parse(l) as { message: string }).message)
      const says = firstLines.find((m) => m.includes("DRUPAL_URL is not set"))
      assert.isDefined(says, `first log lines: ${firstLines.join(" | ")}`)
      assert.include(says, `127.0.0.1:${simPort}`)

      const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/health`))
      assert.strictEqual(health.status, 200)
      const report = (yield* Effect.promise(() => health.json())) as { status: string; dependencies: Array<{ name: string; ready: boolean }> }
      assert.strictEqual(report.status, "ok")
      assert.deepStrictEqual(report.dependencies.map((d) => [d.name, d.ready]), [["drupal", true]])

      const rpc = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${simPort}/jsonrpc`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", method: "content.search", params: { query: "views" }, id: 1 })
        })
      )
      assert.strictEqual(rpc.status, 200)
      const reply = (yield* Effect.promise(() => rpc.json())) as { id: number; result: { total: number; results: Array<unknown> } }
      assert.strictEqual(reply.id, 1)
      assert.isAbove(reply.result.total, 0)
    }))

  it.scopedLive("on SIGTERM a request in flight completes, then the process exits cleanly", () =>
    Effect.gen(function*() {
      const { child, lines, port, simPort } = yield* startGateway()
      // Make the upstream slow so the request is still in flight when the signal arrives.
      yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${simPort}/__sim/faults`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ latency: { kind: "fixed", ms: 700 } })
        })
      )
      const inFlight = fetch(`http://127.0.0.1:${port}/search?q=forms`)
      yield* Effect.sleep("200 millis")
      child.kill("SIGTERM")
      const response = yield* Effect.promise(() => inFlight)
      assert.strictEqual(response.status, 200)
      const body = (yield* Effect.promise(() => response.json())) as { total: number }
      assert.isNumber(body.total)
      const exited = child.exitCode !== null ? Promise.resolve([child.exitCode]) : once(child, "exit")
      const [code] = yield* Effect.promise(() => exited)
      assert.strictEqual(code, 0)
      assert.isTrue(lines.some((l) => l.includes("draining requests in flight")))
      assert.isTrue(lines.some((l) => l.includes("all requests in flight finished")))
    }))
})
