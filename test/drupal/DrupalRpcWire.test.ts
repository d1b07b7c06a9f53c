/**
 * The client against a scripted upstream: replies a real jsonrpc module gives that the simulator
 * need not produce (ids out of place, null ids everywhere, HTML pages), checked byte for byte.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Exit, Layer, Stream } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { anonymous, bearer } from "../../src/drupal/Credentials.js"
import * as DrupalRpc from "../../src/drupal/DrupalRpc.js"
import * as DrupalEndpoint from "../../src/drupal/DrupalEndpoint.js"
import { Content } from "../../src/content/Content.js"
import { clientOptions } from "./fixtures.js"

interface Exchange {
  readonly method: string
  readonly body: unknown
}

interface Scripted {
  readonly status: number
  readonly body: string
  readonly contentType?: string
  readonly headers?: Record<string, string>
}

/** A one-route upstream answering each request with `script(request)`; records what it got. */
const scriptedUpstream = (script: (request: Exchange) => Scripted) =>
  Effect.gen(function*() {
    const seen: Array<Exchange> = []
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const s = Http.createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (c: Buffer) => chunks.push(c))
          req.on("end", () => {
            const url = new URL(req.url ?? "/", "http://upstream")
            const text = req.method === "GET" ? url.searchParams.get("query") ?? "" : Buffer.concat(chunks).toString("utf8")
            let body: unknown = text
            try {
              body = JSON.parse(text)
            } catch {
              // kept as text
            }
            const exchange = { method: req.method ?? "", body }
            seen.push(exchange)
            const reply = script(exchange)
            res.writeHead(reply.status, {
              "Content-Type": reply.contentType ?? "application/json",
              "Content-Length": Buffer.byteLength(reply.body),
              ...reply.headers
            })
            res.end(reply.body)
          })
        })
        s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
      }),
      (s) => Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
    )
    const port = (server.address() as AddressInfo).port
    const rpc = yield* DrupalRpc.make(clientOptions(`http://127.0.0.1:${port}`, {
      retry: { maxAttempts: 2, base: Duration.millis(1), cap: Duration.millis(2), maxElapsed: Duration.seconds(1) },
      breaker: { consecutiveFailures: 1000, failureRatio: 1, minimumCalls: 1000, window: Duration.seconds(10), cooldown: Duration.seconds(1) }
    }))
    return { rpc, seen }
  })

type Item = { readonly jsonrpc: "2.0"; readonly method: string; readonly id: number; readonly params?: Record<string, unknown> }
const items = (body: unknown): ReadonlyArray<Item> => (Array.isArray(body) ? body : [body]) as ReadonlyArray<Item>
const json = (value: unknown): Scripted => ({ status: 200, body: JSON.stringify(value) })

const DRUPAL_500 = "<!DOCTYPE html><html><head><title>Error | Site</title></head><body>The website encountered an unexpected error. Try again later.</body></html>"

describe("DrupalRpc against the module's wire behaviour", () => {
  it.scopedLive("batch replies are matched by position: per-item errors with id null reach the right caller", () =>
    Effect.gen(function*() {
      const { rpc, seen } = yield* scriptedUpstream(({ body }) =>
        json(items(body).map((item) =>
          (item.params?.n as number) % 2 === 0
            ? { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request", data: `Access Denied: #${item.params?.n}` } }
            : { jsonrpc: "2.0", id: item.id, result: { n: item.params?.n } }
        ))
      )
      const results = yield* Effect.forEach(
        [1, 2, 3, 4, 5, 6],
        (n) => Effect.either(rpc.call("content.search", { n }, anonymous)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(seen.length, 1, "one batch")
      results.forEach((result, i) => {
        const n = i + 1
        if (n % 2 === 0) {
          assert.isTrue(Either.isLeft(result))
          if (Either.isLeft(result) && result.left._tag === "DrupalRpcError") {
            assert.strictEqual(result.left.data, `Access Denied: #${n}`)
            assert.strictEqual(result.left.id, null)
          } else assert.fail("expected a DrupalRpcError")
        } else {
          assert.deepStrictEqual(result, Either.right({ n }))
        }
      })
    }))

  it.scopedLive("a single reply with id null is that call's error", () =>
    Effect.gen(function*() {
      const { rpc } = yield* scriptedUpstream(() =>
        json({ jsonrpc: "2.0", id: null, error: { code: -32602, message: "Invalid Params", data: "Not found" } })
      )
      const result = yield* Effect.either(rpc.call("content.get_tutorial", { id: 5 }, anonymous))
      assert.isTrue(Either.isLeft(result) && result.left._tag === "DrupalRpcError" && result.left.code === -32602)
    }))

  it.scopedLive("a non-null id that disagrees with its position, or a missing item, is a decode error", () =>
    Effect.gen(function*() {
      let mode: "swap" | "short" = "swap"
      const { rpc } = yield* scriptedUpstream(({ body }) => {
        const list = items(body).map((item) => ({ jsonrpc: "2.0", id: item.id, result: item.params?.n }))
        return json(mode === "swap" ? [...list].reverse() : list.slice(1))
      })
      const run = Effect.forEach([1, 2, 3], (n) => Effect.either(rpc.call("content.search", { n }, anonymous)), {
        concurrency: "unbounded"
      })
      for (const m of ["swap", "short"] as const) {
        mode = m
        const results = yield* run
        assert.isTrue(
          results.every((r) => Either.isLeft(r) && r.left._tag === "DrupalDecodeError" && r.left.reason === "missing_response"),
          m
        )
      }
    }))

  it.scopedLive("a parse-stage 400 without a usable id: small batches are resent singly, larger ones bisected", () =>
    Effect.gen(function*() {
      // Items whose n is in `bad` fail the parse stage with id null, as a schema failure does.
      const bad = new Set([7])
      const { rpc, seen } = yield* scriptedUpstream(({ body }) => {
        const list = items(body)
        const culprit = list.find((item) => bad.has(item.params?.n as number))
        if (culprit !== undefined) {
          return {
            status: 400,
            body: JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32602, message: "Invalid Params", data: "schema" } })
          }
        }
        return json(Array.isArray(body) ? list.map((item) => ({ jsonrpc: "2.0", id: item.id, result: item.params?.n })) : {
          jsonrpc: "2.0",
          id: list[0]!.id,
          result: list[0]!.params?.n
        })
      })
      const ns = Array.from({ length: 16 }, (_, i) => i + 1)
      const results = yield* Effect.forEach(ns, (n) => Effect.either(rpc.call("content.search", { n }, anonymous)), {
        concurrency: "unbounded"
      })
      results.forEach((r, i) => {
        if (i + 1 === 7) {
          assert.isTrue(Either.isLeft(r) && r.left._tag === "DrupalHttpError" && r.left.status === 400)
        } else {
          assert.deepStrictEqual(r, Either.right(i + 1))
        }
      })
      // 16 → 8 + 8 → (4 + 4) → 4 singles: 1 + 2 + 2 + 4 = 9, far from one per item plus the batch (17).
      assert.strictEqual(seen.length, 9)
    }))

  it.scopedLive("a parse-stage 400 naming an item's id answers that item and resends the others as one batch", () =>
    Effect.gen(function*() {
      const { rpc, seen } = yield* scriptedUpstream(({ body }) => {
        const list = items(body)
        const culprit = list.find((item) => item.method === "no.such")
        if (culprit !== undefined) {
          return {
            status: 400,
            body: JSON.stringify({
              jsonrpc: "2.0",
              id: culprit.id,
              error: { code: -32601, message: "Method Not Found", data: "The method 'no.such' does not exist/is not available." }
            })
          }
        }
        return json(list.map((item) => ({ jsonrpc: "2.0", id: item.id, result: true })))
      })
      const results = yield* Effect.forEach(
        ["a", "b", "no.such", "c", "d", "e"],
        (m) => Effect.either(rpc.call(m === "no.such" ? m : `x.${m}`, { m }, bearer("t"))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(seen.length, 2)
      assert.strictEqual(results.filter(Either.isRight).length, 5)
    }))

  it.scopedLive("Drupal's HTML pages map to their HTTP status, not to a decode failure; a 500 page is retried", () =>
    Effect.gen(function*() {
      let page: Scripted = { status: 500, body: DRUPAL_500, contentType: "text/html; charset=UTF-8" }
      const { rpc, seen } = yield* scriptedUpstream(() => page)
      const cases: ReadonlyArray<readonly [Scripted, number, number]> = [
        [{ status: 500, body: DRUPAL_500, contentType: "text/html; charset=UTF-8" }, 500, 2],
        [{
          status: 401,
          body: "<html><body>Unauthorized</body></html>",
          contentType: "text/html",
          headers: { "WWW-Authenticate": "Bearer realm=\"OAuth\", error=\"invalid_token\"" }
        }, 401, 1],
        [{ status: 403, body: "<html><body>Access denied</body></html>", contentType: "text/html" }, 403, 1],
        [{ status: 404, body: "<html><body>Page not found</body></html>", contentType: "text/html" }, 404, 1],
        [{ status: 503, body: "<html><body>Site under maintenance</body></html>", contentType: "text/html" }, 503, 2]
      ]
      for (const [reply, status, attempts] of cases) {
        page = reply
        seen.length = 0
        const exit = yield* Effect.exit(rpc.call("cache.rebuild", undefined, bearer("t")))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "DrupalHttpError", `status ${status}`)
        if (error?._tag === "DrupalHttpError") assert.strictEqual(error.status, status)
        assert.strictEqual(seen.length, attempts, `attempts for ${status}`)
        const discovery = yield* Effect.either(rpc.discovery(bearer("t"), "no.such"))
        assert.isTrue(Either.isLeft(discovery) && discovery.left._tag === "DrupalHttpError" && discovery.left.status === status)
      }
    }))

  it.scopedLive("openBody: a reply within the bound is Whole (its exact bytes), a longer one streams from what was read; a refusal fails the open", () =>
    Effect.gen(function*() {
      const small = JSON.stringify({ jsonrpc: "2.0", id: 1, result: { id: 1, content: "<p>small</p>" } })
      const large = JSON.stringify({ jsonrpc: "2.0", id: 1, result: { id: 2, content: `<p>${"x".repeat(300_000)}</p>` } })
      const { rpc } = yield* scriptedUpstream(({ body }) => {
        const id = items(body)[0]!.params?.id
        return id === 1 ? { status: 200, body: small } : id === 2 ? { status: 200, body: large } : { status: 403, body: DRUPAL_500, contentType: "text/html" }
      })
      const decoder = new TextDecoder()
      const text = (chunks: ReadonlyArray<Uint8Array>) => chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode()
      const whole = yield* rpc.openBody!("content.get_tutorial", { id: 1 }, anonymous, 64 * 1024)
      assert.strictEqual(whole._tag, "Whole")
      if (whole._tag === "Whole") assert.strictEqual(text(whole.chunks), small)
      const longer = yield* rpc.openBody!("content.get_tutorial", { id: 2 }, anonymous, 64 * 1024)
      assert.strictEqual(longer._tag, "Streaming")
      if (longer._tag === "Streaming") assert.strictEqual(text(Chunk.toReadonlyArray(yield* Stream.runCollect(longer.stream))), large)
      // Nothing read ahead: a lazy stream of the whole body.
      const lazy = yield* rpc.openBody!("content.get_tutorial", { id: 1 }, anonymous, 0)
      assert.strictEqual(lazy._tag, "Streaming")
      if (lazy._tag === "Streaming") assert.strictEqual(text(Chunk.toReadonlyArray(yield* Stream.runCollect(lazy.stream))), small)
      const refused = yield* Effect.either(rpc.openBody!("content.get_tutorial", { id: 3 }, anonymous, 64 * 1024))
      assert.isTrue(Either.isLeft(refused) && refused.left._tag === "DrupalHttpError" && refused.left.status === 403)
      assert.strictEqual(rpc.pool().running, 0)
    }))

  it.scopedLive("Content.documentOpen on a small reply: one call gives the front matter and the body, converted whole; a JSON-RPC error or a cut reply fails it, never a short document", () =>
    Effect.gen(function*() {
      const item = { id: 1, title: "T", url: "/tutorial/1", summary: "s", metadata: { drupal_version: "11", difficulty: "beginner", tags: ["a"], updated: "2026-01-01T00:00:00Z" } }
      const replies: Record<number, string> = {
        1: JSON.stringify({ jsonrpc: "2.0", id: 1, result: { ...item, content: "<h2>Intro</h2><p>Read <a href=\"/x\">this</a>.</p>" } }),
        2: JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: "Access Denied", data: "denied" } }),
        3: JSON.stringify({ jsonrpc: "2.0", id: 1, result: { ...item, content: "<p>cut" } }).slice(0, 120)
      }
      const { rpc } = yield* scriptedUpstream(({ body }) => ({ status: 200, body: replies[items(body)[0]!.params?.id as number]! }))
      const open = (id: number) =>
        Effect.flatMap(Content, (content) => content.documentOpen(id, anonymous, 64 * 1024)).pipe(
          Effect.provide(Content.Default.pipe(
            Layer.provide(Layer.succeed(DrupalRpc.DrupalRpc, rpc)),
            Layer.provide(DrupalEndpoint.layer("http://drupal.test"))
          ))
        )
      const converted = yield* open(1)
      assert.strictEqual(converted._tag, "Whole")
      if (converted._tag === "Whole") {
        assert.isTrue(converted.markdown.startsWith("---\ntitle: \"T\"\nurl: \"http://drupal.test/tutorial/1\""), converted.markdown)
        assert.isTrue(converted.markdown.endsWith("## Intro\n\nRead [this](http://drupal.test/x).\n"), converted.markdown)
      }
      const denied = yield* Effect.either(open(2))
      assert.isTrue(Either.isLeft(denied) && denied.left._tag === "DrupalRpcError" && denied.left.message === "Access Denied")
      const cut = yield* Effect.either(open(3))
      assert.isTrue(Either.isLeft(cut) && cut.left._tag === "DrupalDecodeError")
    }))
})
