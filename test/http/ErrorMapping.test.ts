/**
 * The log of a failed request: a server error says why (the failure's kind, status, JSON-RPC
 * code and method), never the upstream's body; a client error logs nothing here.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, HashMap, Logger } from "effect"
import { LoadTimeout } from "../../src/cache/TieredModel.js"
import { DrupalDecodeError, DrupalHttpError, DrupalTransportError, ReplyTooLarge } from "../../src/drupal/DrupalError.js"
import { describeFailure, failWithApiError, type HandlerFailure } from "../../src/http/ErrorMapping.js"
import { BadInput } from "../../src/http/RequestParams.js"

/** Runs `failWithApiError(failure)` and returns what it logged: message and annotations. */
const logged = (failure: HandlerFailure) =>
  Effect.gen(function*() {
    const lines: Array<{ message: string; annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, message }) =>
      lines.push({ message: String(Array.isArray(message) ? message[0] : message), annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
    )
    const error = yield* Effect.flip(failWithApiError(failure).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
    return { error, lines }
  })

describe("failWithApiError's log", () => {
  it.effect("a 502 logs its code and cause: status, JSON-RPC code and method, without the body", () =>
    Effect.gen(function*() {
      const failure = new DrupalHttpError({
        status: 500,
        bodyExcerpt: "Fatal error: Allowed memory size exhausted in /var/www/secret-path.php",
        rpcError: { code: -32603, message: "Internal error" },
        method: "content.get_tutorial"
      })
      const { error, lines } = yield* logged(failure)
      assert.strictEqual(error.code, "bad_upstream_reply")
      assert.deepStrictEqual(lines.map((l) => l.message), ["request failed"])
      assert.strictEqual(lines[0]!.annotations.code, "bad_upstream_reply")
      assert.strictEqual(lines[0]!.annotations.cause, "Drupal answered HTTP 500 (JSON-RPC -32603) calling content.get_tutorial")
      assert.notInclude(JSON.stringify(lines), "secret-path")
    }))

  it.effect("a transport failure and the cache's hard timeout name their kind", () =>
    Effect.gen(function*() {
      const transport = yield* logged(new DrupalTransportError({ reason: "connection_reset", method: "content.search", cause: new Error("socket hang up") }))
      assert.match(String(transport.lines[0]!.annotations.cause), /^DrupalTransportError: .*connection_reset.*content\.search/)
      const timeout = yield* logged(new LoadTimeout({ key: "content:p:1", after: Duration.seconds(35) }))
      assert.strictEqual(timeout.error.code, "upstream_timeout")
      assert.strictEqual(timeout.lines[0]!.annotations.cause, "LoadTimeout: the origin load took longer than 35s")
      assert.notInclude(describeFailure(new LoadTimeout({ key: "content:p:1", after: Duration.seconds(35) })), "content:p:1")
    }))

  it.effect("a reply that does not fit its schema logs its reason and method, not the detail that may quote the reply; the reply bound's detail is kept", () =>
    Effect.gen(function*() {
      const mismatch = yield* logged(
        new DrupalDecodeError({ reason: "unexpected_result", detail: "Expected string, actual \"subscriber-only paragraph\"", method: "content.get_tutorial" })
      )
      assert.strictEqual(mismatch.lines[0]!.annotations.cause, "DrupalDecodeError (unexpected_result) calling content.get_tutorial")
      assert.notInclude(JSON.stringify(mismatch.lines), "subscriber-only paragraph")
      const tooLarge = yield* logged(new DrupalDecodeError({ reason: "unexpected_result", detail: "reply larger than 67108864 bytes", method: "batch", cause: new ReplyTooLarge() }))
      assert.strictEqual(tooLarge.lines[0]!.annotations.cause, "DrupalDecodeError (unexpected_result) calling batch: reply larger than 67108864 bytes")
    }))

  it.effect("a client error (400) logs nothing", () =>
    Effect.gen(function*() {
      const { error, lines } = yield* logged(new BadInput("id", "not a number"))
      assert.strictEqual(error.code, "bad_request")
      assert.deepStrictEqual(lines, [])
    }))
})
