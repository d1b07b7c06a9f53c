/**
 * Requests node refuses before the gateway's handlers see them still get the gateway's JSON error
 * body with a stable code: unparsable requests, and request lines or headers over node's header
 * size bound (an oversized URL included).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import { startGateway } from "./fixtures.js"

/** Writes `raw` on a fresh connection and reads everything until the server closes it. */
const rawExchange = (base: string, raw: string) =>
  Effect.async<string>((resume) => {
    const url = new URL(base)
    let answer = ""
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(raw))
    socket.setEncoding("utf8").on("data", (chunk: string) => (answer += chunk))
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.succeed(answer)))
  }).pipe(Effect.timeout("10 seconds"))

const parse = (answer: string) => {
  const [head, body = ""] = answer.split("\r\n\r\n", 2)
  const [statusLine, ...headers] = head!.split("\r\n")
  return {
    status: Number(statusLine!.split(" ")[1]),
    contentType: headers.find((h) => h.toLowerCase().startsWith("content-type:"))?.split(":")[1]?.trim(),
    body: JSON.parse(body) as { error: { code: string; message: string } }
  }
}

describe("requests node refuses itself", () => {
  it.scopedLive("get a JSON error with a stable code: 400 unparsable, 431 oversized headers or URL", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      const garbage = parse(yield* rawExchange(base, "THIS IS NOT HTTP\r\n\r\n"))
      assert.strictEqual(garbage.status, 400)
      assert.strictEqual(garbage.contentType, "application/json")
      assert.strictEqual(garbage.body.error.code, "bad_request")

      const bigHeader = parse(yield* rawExchange(base, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`))
      assert.strictEqual(bigHeader.status, 431)
      assert.strictEqual(bigHeader.body.error.code, "headers_too_large")

      const bigUrl = parse(yield* rawExchange(base, `GET /search?q=${"b".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`))
      assert.strictEqual(bigUrl.status, 431)
      assert.strictEqual(bigUrl.body.error.code, "headers_too_large")
    }))
})
