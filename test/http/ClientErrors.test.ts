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

describe("bad input the platform rejects", () => {
  it.scopedLive("a repeated query parameter and a malformed JSON body get a JSON 400 without schema internals", () =>
    Effect.gen(function*() {
      const { request } = yield* startGateway()
      // Cached first, so the memory-hit path sees the repeated form too: it must not serve it.
      const first = yield* Effect.promise(() => request("/search?q=a"))
      assert.strictEqual(first.status, 200)
      const repeated = yield* Effect.promise(() => request("/search?q=a&q=b"))
      assert.strictEqual(repeated.status, 400)
      assert.strictEqual(repeated.body?.error?.code, "bad_request", repeated.text)
      assert.notInclude(repeated.text, "Expected")
      assert.notInclude(repeated.text, "HttpApiDecodeError")

      const malformed = yield* Effect.promise(() =>
        request("/rpc/content.search", { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" })
      )
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(malformed.body?.error?.code, "bad_request", `${malformed.status} [${malformed.text}]`)
    }))
})

describe("request bodies refused before the app reads them", () => {
  it.scopedLive("a body over HTTP_MAX_BODY_BYTES is answered 413 body_too_large, also when the client closes after sending", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway({ HTTP_MAX_BODY_BYTES: "1024" })
      const body = JSON.stringify({ q: "x".repeat(50_000) })
      const answer = parse(yield* rawExchange(
        base,
        `POST /rpc/content.search HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      ))
      assert.strictEqual(answer.status, 413)
      assert.strictEqual(answer.contentType, "application/json")
      assert.strictEqual(answer.body.error.code, "body_too_large")
      // The connection stays usable on keep-alive: the next request on it is answered.
      const res = yield* Effect.promise(() => fetch(`${base}/rpc/content.search`, { method: "POST", body, headers: { "content-type": "application/json" } }))
      assert.strictEqual(res.status, 413)
      assert.strictEqual(((yield* Effect.promise(() => res.json())) as any).error.code, "body_too_large")
    }))

  it.scopedLive("a body without a Content-Length is answered 411; a path no route matches 404 not_found", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      const chunked = parse(yield* rawExchange(
        base,
        `POST /rpc/content.search HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`
      ))
      assert.strictEqual(chunked.status, 411)
      assert.strictEqual(chunked.body.error.code, "length_required")
      const nowhere = parse(yield* rawExchange(base, `OPTIONS /rpc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
      assert.strictEqual(nowhere.status, 404)
      assert.strictEqual(nowhere.body.error.code, "not_found")
    }))
})
