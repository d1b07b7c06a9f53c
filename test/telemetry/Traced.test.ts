/**
 * `Traced.fn` / `Traced.withSpan`: the spans of `Effect.fn` / `Effect.withSpan` while the tracer is
 * on, none at all (no span made, not even a no-op one) while it is off.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option, Tracer } from "effect"
import * as Traced from "../../src/telemetry/Traced.js"

/** A tracer that records every span it is asked to make. */
const recording = () => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const attributes = new Map<string, unknown>(Object.entries(options?.attributes ?? {}))
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `span${spans.length}`,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (endTime, exit) => {
          ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
        },
        attribute: (key, value) => void attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

const parentName = (span: Tracer.Span): string | undefined =>
  Option.match(span.parent, { onNone: () => undefined, onSome: (p) => (p._tag === "Span" ? p.name : undefined) })

describe("Traced", () => {
  const inner = Traced.fn("Test.inner")(function*(n: number) {
    yield* Traced.annotate("n", n)
    return n * 2
  })
  const outer = Traced.fn("Test.outer", { attributes: { fixed: "yes" } })(
    function*(n: number) {
      return (yield* inner(n)) + 1
    },
    (effect, n) => Effect.map(effect, (x) => x + n)
  )
  const plain = Traced.fn("Test.plain")((s: string) => Effect.succeed(s.length))

  it.effect("with the tracer on: one span per call, named, with its attributes, nested, pipeables inside", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recording()
      const result = yield* outer(5).pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(true))
      assert.strictEqual(result, 16, "(5 × 2 + 1) + 5: the pipeable ran with the arguments")
      assert.deepStrictEqual(spans.map((s) => s.name), ["Test.outer", "Test.inner"])
      assert.strictEqual(parentName(spans[1]!), "Test.outer")
      assert.strictEqual(spans[0]!.attributes.get("fixed"), "yes")
      assert.strictEqual(spans[1]!.attributes.get("n"), 5)
      assert.isTrue(spans.every((s) => s.status._tag === "Ended"))
      assert.strictEqual(yield* plain("four").pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(true)), 4)
      assert.strictEqual(spans[2]?.name, "Test.plain")
    }))

  it.effect("with the tracer off: no span is made, the results are the same", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recording()
      const result = yield* outer(5).pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(false))
      assert.strictEqual(result, 16)
      assert.strictEqual(yield* plain("four").pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(false)), 4)
      const wrapped = yield* Effect.succeed(1).pipe(Traced.withSpan("Test.with"), Effect.withTracer(tracer), Effect.withTracerEnabled(false))
      assert.strictEqual(wrapped, 1)
      assert.strictEqual(spans.length, 0)
      // Not even a no-op span (which `Effect.withSpan` makes with the tracer off): the body sees none.
      const seen = yield* Traced.fn("Test.sees")(function*() {
        return yield* Effect.option(Effect.currentSpan)
      })().pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(false))
      assert.isTrue(Option.isNone(seen))
      const seenOn = yield* Traced.fn("Test.sees")(function*() {
        return yield* Effect.option(Effect.currentSpan)
      })().pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(true))
      assert.strictEqual(Option.getOrUndefined(seenOn)?.name, "Test.sees")
    }))

  it.effect("withSpan, data-first and data-last, ends its span with the effect's exit", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recording()
      const failing = Traced.withSpan(Effect.fail("no"), "Test.failing", { attributes: { a: 1 } })
      const exit = yield* Effect.exit(failing.pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(true)))
      assert.isTrue(Exit.isFailure(exit))
      yield* Effect.succeed(2).pipe(Traced.withSpan("Test.ok"), Effect.withTracer(tracer), Effect.withTracerEnabled(true))
      assert.deepStrictEqual(spans.map((s) => s.name), ["Test.failing", "Test.ok"])
      assert.strictEqual(spans[0]!.attributes.get("a"), 1)
      const ended = spans[0]!.status
      assert.isTrue(ended._tag === "Ended" && Exit.isFailure(ended.exit))
    }))
})
