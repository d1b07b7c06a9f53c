/**
 * A local OTLP/HTTP collector for specs: `node:http` on 127.0.0.1, port 0, in the test's scope;
 * every POST is kept with its path and body, answered 200 `{}`.
 */
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** Starts the collector; `received` fills as exports arrive. */
export const otlpCollector = Effect.gen(function*() {
  const received: Array<{ path: string; body: string }> = []
  const server = yield* Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const s = Http.createServer((req, res) => {
        let body = ""
        req.setEncoding("utf8").on("data", (c) => (body += c)).on("end", () => {
          received.push({ path: req.url ?? "", body })
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.close(() => resume(Effect.void))
      })
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }
})
