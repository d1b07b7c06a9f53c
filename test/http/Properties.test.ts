/**
 * Property specs of every route (fast-check, fixed seed, 200 runs per route): generated paths,
 * query strings (repeated, unknown and malformed parameters included), headers (garbage
 * credentials, validators, encodings, request ids, control characters) and bodies (JSON of any
 * shape, broken JSON, bodies over the size bound), written on raw sockets so that nothing is
 * normalised by a client library on the way.
 *
 * Whatever comes in: the gateway answers (no hang, no crash), never a 5xx other than 502/503/504
 * (which only the upstream may cause), and every answer ≥ 400 is `{"error":{"code","message"}}`
 * with a stable code and no internal text (schema trees, parse errors, stack frames).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import * as net from "node:net"
import { startGateway } from "./fixtures.js"

const SEED = 20261126
const RUNS = 200

interface RawAnswer {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: string
}

/** One request on a fresh connection, read to the server's close; chunked bodies are decoded. */
const exchange = (port: number, head: string, body: Buffer | undefined): Promise<RawAnswer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(head)
      // No half-close: a client that sends FIN before its answer is one that hung up.
      if (body !== undefined) socket.write(body)
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer within 15 s to:\n${head.slice(0, 500)}`))
    }, 15_000)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      const all = Buffer.concat(chunks)
      const split = all.indexOf("\r\n\r\n")
      if (split === -1) return reject(new Error(`no HTTP answer (${all.length} bytes) to:\n${head.slice(0, 500)}`))
      const [statusLine, ...lines] = all.subarray(0, split).toString("latin1").split("\r\n")
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]))
      let rest = all.subarray(split + 4)
      if (headers.get("transfer-encoding") === "chunked") {
        const parts: Array<Buffer> = []
        for (;;) {
          const eol = rest.indexOf("\r\n")
          if (eol === -1) break
          const size = parseInt(rest.subarray(0, eol).toString("latin1"), 16)
          if (!(size > 0)) break
          parts.push(rest.subarray(eol + 2, eol + 2 + size))
          rest = rest.subarray(eol + 2 + size + 2)
        }
        rest = Buffer.concat(parts)
      }
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: rest.toString("utf8") })
    })
  })

/** Text an error body must never carry: Effect schema trees, decode error names, stack frames. */
const INTERNAL = [/[└├]─/, /HttpApiDecodeError/, /ParseError/, /RequestError/, /\n\s+at /, /Schema\./, /node_modules/]

const statusOnly = (status: number) =>
  status >= 500 && status !== 502 && status !== 503 && status !== 504 ? `status ${status}` : undefined

/** The rule every answer keeps; returns a description of the violation, or undefined. */
const violation = (answer: RawAnswer): string | undefined => {
  const { status, body } = answer
  if (!(status >= 100 && status <= 599)) return `status ${status}`
  if (status >= 500 && status !== 502 && status !== 503 && status !== 504) return `status ${status}: ${body.slice(0, 300)}`
  if (status < 400) return undefined
  if (!(answer.headers.get("content-type") ?? "").startsWith("application/json")) {
    return `status ${status} with content-type ${answer.headers.get("content-type")}: ${body.slice(0, 200)}`
  }
  let parsed: any
  try {
    parsed = JSON.parse(body)
  } catch {
    return `status ${status} with a body that is not JSON: ${body.slice(0, 200)}`
  }
  const error = parsed?.error
  if (typeof error?.code !== "string" || !/^[a-z][a-z0-9_]*$/.test(error.code)) return `bad error code in ${body.slice(0, 200)}`
  if (typeof error.message !== "string" || error.message === "") return `bad error message in ${body.slice(0, 200)}`
  const leak = INTERNAL.find((pattern) => pattern.test(body))
  if (leak !== undefined) return `internal text (${leak}) in ${body.slice(0, 300)}`
  return undefined
}

// ---- generators ---------------------------------------------------------------------------

const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: -1e12, max: 1e12 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "0", "-1", "1e999", "NaN", "null", "true", "[]", "{}", "../..", "%00", "\u0000", "a".repeat(3000)) }
)

/** A path segment: percent-encoded text, or raw sequences that are not valid encodings. */
const segment = (known: ReadonlyArray<string>) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 3, arbitrary: text.map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%ff%fe", "%C0%AF", "..", "%2e%2e", "a%2Fb", ";x=1", "%E2%82") }
  )

const queryKey = (keys: ReadonlyArray<string>) =>
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: text.map(encodeURIComponent) })

/** A query string: known and unknown keys, repeated ones, values encoded or raw-malformed. */
const query = (keys: ReadonlyArray<string>) =>
  fc.array(
    fc.tuple(
      queryKey(keys),
      fc.oneof(
        { weight: 4, arbitrary: text.map(encodeURIComponent) },
        { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "+", "a&b", "=", "%E2%82") }
      ),
      fc.boolean()
    ),
    { maxLength: 6 }
  ).map((pairs) => pairs.length === 0 ? "" : "?" + pairs.map(([k, v, bare]) => bare && v === "" ? k : `${k}=${v}`).join("&"))

const token = fc.oneof(
  fc.constantFrom("demo-free-token", "demo-subscriber-token", "demo-admin-token", "demo-norpc-token", "test-admin"),
  fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s))
)

/** Optional headers; values are printable, except a rare control character node must refuse. */
const headers = fc.record({
  authorization: fc.option(fc.oneof(
    token.map((t) => `Bearer ${t}`),
    fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })).map(([u, p]) =>
      `Basic ${Buffer.from(`${u.replace(/:/g, "")}:${p}`).toString("base64")}`
    ),
    fc.constantFrom("Basic free:free", "Basic", "Bearer", "Digest x", "Basic !!!", "Bearer " + "x".repeat(5000))
  ), { nil: undefined }),
  accept: fc.option(fc.constantFrom("*/*", "text/markdown", "application/json", "text/html;q=0.5", "garbage"), { nil: undefined }),
  "accept-encoding": fc.option(fc.constantFrom("gzip", "br;q=1, gzip;q=0.5", "identity;q=0", "*", "x;q=abc"), { nil: undefined }),
  "if-none-match": fc.option(fc.constantFrom("*", "\"abc\"", "W/\"x\"", "garbage", "\"" + "a".repeat(200) + "\""), { nil: undefined }),
  "x-request-id": fc.option(fc.string({ maxLength: 300 }).filter((s) => !/[\r\n]/.test(s)), { nil: undefined }),
  "x-forwarded-for": fc.option(fc.constantFrom("1.2.3.4", "::1", "garbage, 5.6.7.8"), { nil: undefined }),
  "content-type": fc.option(fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1"), { nil: undefined }),
  control: fc.option(fc.constantFrom("\u0001", "\u007f", "\u0000"), { nil: undefined, freq: 20 })
})

/** A body: JSON of any shape, broken JSON, bytes, or one over the size bound (4 KiB here). */
const body = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 2, arbitrary: fc.dictionary(fc.constantFrom("q", "id", "ids", "limit", "tags", "nid", "x"), fc.jsonValue({ maxDepth: 2 })).map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 64 }).map((s) => Buffer.from(`{"q": ${s}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from(JSON.stringify({ q: "x".repeat(8_000) }))) }
)

const requestHead = (method: string, target: string, h: Readonly<Record<string, string | undefined>>, bodyBytes: Buffer | undefined) => {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"]
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined || name === "control") continue
    lines.push(`${name}: ${value}`)
  }
  if (h.control !== undefined) lines.push(`X-Odd: a${h.control}b`)
  if (bodyBytes !== undefined) lines.push(`Content-Length: ${bodyBytes.length}`)
  return lines.join("\r\n") + "\r\n\r\n"
}

describe("every route, under generated requests", () => {
  it.scopedLive("answers every request; no 5xx but 502/503/504; every error is the JSON error body", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway(
        { ADMIN_TOKEN: "test-admin", HTTP_MAX_BODY_BYTES: "4096", WEBHOOK_SECRET: "whsec_cHJvcGVydHktc3BlYy13ZWJob29rLXNlY3JldC0zMmI=" },
        { cost: { enabled: false } }
      )
      const port = Number(new URL(base).port)
      const ids = sim.corpus.items.slice(0, 20).map((i) => String(i.id))
      const methods = ["content.search", "content.get_tutorial", "system.ping", "user.access_context", "admin.only", "x"]
      const searchKeys = ["q", "tags", "drupal_version", "content_type", "access_level", "sort", "limit", "offset"]

      const routes: ReadonlyArray<{ readonly name: string; readonly request: fc.Arbitrary<readonly [string, string, Buffer | undefined]> }> = [
        { name: "GET /search", request: query(searchKeys).map((q) => ["GET", `/search${q}`, undefined] as const) },
        { name: "GET /content/{id}", request: fc.tuple(segment(ids), query(["include_content", "format"])).map(([id, q]) => ["GET", `/content/${id}${q}`, undefined] as const) },
        { name: "GET /content/{id}/markdown", request: fc.tuple(segment(ids), query(["include_content", "format"])).map(([id, q]) => ["GET", `/content/${id}/markdown${q}`, undefined] as const) },
        { name: "POST /rpc/{method}", request: fc.tuple(segment(methods), body).map(([m, b]) => ["POST", `/rpc/${m}`, b] as const) },
        { name: "GET /methods, /tools", request: fc.tuple(fc.constantFrom("/methods", "/tools"), query(["x", "cursor"])).map(([p, q]) => ["GET", p + q, undefined] as const) },
        { name: "POST /admin/invalidate", request: body.map((b) => ["POST", "/admin/invalidate", b] as const) },
        { name: "POST /webhooks/drupal", request: body.map((b) => ["POST", "/webhooks/drupal", b] as const) },
        { name: "GET /health, /health/live, /openapi.json", request: fc.tuple(fc.constantFrom("/health", "/health/live", "/openapi.json"), query(["x"])).map(([p, q]) => ["GET", p + q, undefined] as const) },
        {
          name: "any method, any path",
          request: fc.tuple(
            fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"),
            fc.array(segment(["content", "search", "rpc", "admin", "webhooks", "health", "mcp", "x"]), { minLength: 0, maxLength: 4 }),
            fc.option(body, { nil: undefined })
          ).map(([m, segs, b]) => [m, "/" + segs.join("/"), b] as const)
        }
      ]

      const seen = new Map<number, number>()
      for (const route of routes) {
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(route.request, headers, async ([method, target, bodyBytes], h) => {
              const answer = await exchange(port, requestHead(method, target, h, bodyBytes), bodyBytes)
              seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1)
              // A HEAD answer has no body: only its status is judged.
              const found = method === "HEAD" ? violation({ ...answer, status: answer.status < 400 ? answer.status : 200 }) ?? statusOnly(answer.status) : violation(answer)
              if (found !== undefined) throw new Error(`${method} ${target}: ${found}`)
            }),
            { seed: SEED, numRuns: RUNS, endOnFailure: true }
          ).catch((error) => {
            throw new Error(`${route.name}: ${String((error as any).cause?.message ?? (error as Error).message).slice(0, 2000)}\n(${String((error as Error).message).split("\n")[1]?.slice(0, 200)})`)
          })
        )
      }
      // The generators reach the interesting answers, not only one kind.
      for (const status of [200, 400, 401, 404, 413]) {
        assert.isTrue(seen.has(status), `status ${status} among ${JSON.stringify([...seen])}`)
      }
      // Still alive and serving after everything.
      const alive = yield* Effect.promise(() => exchange(port, requestHead("GET", "/health/live", {}, undefined), undefined))
      assert.strictEqual(alive.status, 200)
    }), 240_000)

  it.scopedLive("with a failing upstream (30 % 503s, 10 % per-item errors, resets), only 502/503/504 and every error JSON", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway(
        { DRUPAL_RETRY_MAX_ATTEMPTS: "1", CACHE_CONTENT_FRESH_MS: "1", CACHE_SEARCH_FRESH_MS: "1", CACHE_MARKDOWN_FRESH_MS: "1" },
        { cost: { enabled: false } }
      )
      const port = Number(new URL(base).port)
      const ids = sim.corpus.items.slice(0, 20).map((i) => String(i.id))
      const seen = new Map<number, number>()
      // Valid questions here (the first spec covers malformed ones): what fails is the upstream.
      const word = fc.constantFrom("drupal", "views", "cache", "theme", "migrate", "forms", "entity", "twig")
      const request = fc.oneof(
        fc.tuple(word, fc.integer({ min: 1, max: 5 })).map(([q, n]) => ["GET", `/search?q=${q}&limit=${n}`] as const),
        fc.tuple(fc.constantFrom(...ids), fc.boolean()).map(([id, full]) => ["GET", `/content/${id}?include_content=${full}`] as const),
        fc.constantFrom(...ids).map((id) => ["GET", `/content/${id}/markdown`] as const)
      )
      const caller = fc.record({
        authorization: fc.option(fc.constantFrom("Bearer demo-free-token", "Bearer demo-subscriber-token"), { nil: undefined }),
        "accept-encoding": fc.option(fc.constantFrom("gzip", "br"), { nil: undefined })
      })
      for (const faults of [{ errorRates: { "*": 0.3 }, errorKind: "http503" as const }, { errorRates: { "*": 0.1 }, errorKind: "rpc" as const, resetRate: 0.2 }]) {
        yield* sim.setFaults(faults)
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(request, caller, async ([method, target], h) => {
              const answer = await exchange(port, requestHead(method, target, h, undefined), undefined)
              seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1)
              const found = violation(answer)
              if (found !== undefined) throw new Error(`${method} ${target}: ${found}`)
            }),
            { seed: SEED, numRuns: RUNS, endOnFailure: true }
          ).catch((error) => {
            throw new Error(`${JSON.stringify(faults)}: ${String((error as any).cause?.message ?? (error as Error).message).slice(0, 2000)}`)
          })
        )
      }
      assert.isTrue([...seen.keys()].some((status) => status >= 502 && status <= 504), `upstream failures reached callers: ${JSON.stringify([...seen])}`)
      assert.isTrue(seen.has(200), JSON.stringify([...seen]))
    }), 240_000)
})
