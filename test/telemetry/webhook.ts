/**
 * A local alert webhook for specs: `node:http` on 127.0.0.1, port 0, in the test's scope. Each
 * POST body is parsed and offered to `received`; the answer status comes from `statusFor(n)`
 * (n = 1 for the first request).
 */
import { Effect, Queue } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { AlertPayload } from "../../src/telemetry/SloMonitor.js"

export interface Webhook {
  readonly url: string
  readonly received: Queue.Queue<AlertPayload>
  /** Requests answered so far. */
  readonly count: () => number
}

export const webhookServer = (statusFor: (n: number) => number = () => 204) =>
  Effect.gen(function*() {
    // Unbounded is safe: a spec sends a handful of alerts.
    const received = yield* Queue.unbounded<AlertPayload>()
    let n = 0
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const s = Http.createServer((req, res) => {
          let body = ""
          req.setEncoding("utf8")
          req.on("data", (chunk: string) => (body += chunk))
          req.on("end", () => {
            n++
            const status = statusFor(n)
            res.writeHead(status, { "content-type": "text/plain" })
            res.end("ok")
            Queue.unsafeOffer(received, JSON.parse(body) as AlertPayload)
          })
        })
        s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
      }),
      (s) =>
        Effect.async<void>((resume) => {
          s.closeAllConnections()
          s.close(() => resume(Effect.void))
        })
    )
    const port = (server.address() as AddressInfo).port
    return { url: `http://127.0.0.1:${port}/alerts`, received, count: () => n } satisfies Webhook
  })
