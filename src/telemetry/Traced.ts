/**
 * Spans that cost nothing while the tracer is off. `Effect.fn(name)` takes a stack trace
 * (`new Error()`) on every call and `Effect.withSpan` one per use, and both build a span even when
 * the tracer is disabled (a no-op span, its context, its end): measured on a `/content` miss of the
 * gateway (memory tier, 1,500 misses, two interleaved pairs), about 12 % of its CPU went to spans
 * no one would see. Requests run with the tracer off unless sampled (`withRequestContext`), so
 * here the span is made only when the fiber's tracer is on: a sampled request gets the same span
 * names, attributes and nesting as with `Effect.fn`/`Effect.withSpan`; an untraced one pays a
 * fiber-ref read.
 *
 * Differences from Effect's own: no `code.stacktrace` attribute on failed spans (the stack would
 * be taken here, not at the caller), and a function's pipeables run inside its span, as with
 * `Effect.fn`.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, type Tracer } from "effect"

const isGeneratorFunction = (u: unknown): boolean =>
  typeof u === "function" && u.constructor?.name === "GeneratorFunction"

/** `Effect.withSpan(self, name, options)` when the tracer is on, else `self` as it is. */
export const withSpan: {
  (name: string, options?: Tracer.SpanOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, name: string, options?: Tracer.SpanOptions): Effect.Effect<A, E, R>
} = function() {
  const dataFirst = typeof arguments[0] !== "string"
  const name: string = dataFirst ? arguments[1] : arguments[0]
  const options: Tracer.SpanOptions = { ...(dataFirst ? arguments[2] : arguments[1]), captureStackTrace: false }
  // The flag is read in one step of the fiber (not a `FiberRef.get` and a `flatMap`: three).
  const traced = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) => (fiber.getFiberRef(FiberRef.currentTracerEnabled) ? Effect.withSpan(self, name, options) : self))
  return dataFirst ? traced(arguments[0]) : traced
} as never

/**
 * `Effect.fn(name, options)`: a function whose every call runs in a span named `name`, made only
 * when the tracer is on. Takes a generator function or a function returning an `Effect`, and
 * pipeables, as `Effect.fn` does.
 */
export const fn = (name: string, options?: Tracer.SpanOptions): Effect.fn.Gen & Effect.fn.NonGen =>
  ((body: (...args: Array<unknown>) => unknown, ...pipeables: Array<(effect: unknown, ...args: Array<unknown>) => unknown>) => {
    const generator = isGeneratorFunction(body)
    const span = withSpan(name, options)
    const traced = function(this: unknown, ...args: Array<unknown>) {
      let effect: unknown = generator
        ? Effect.gen(() => body.apply(this, args) as Generator<never, unknown, never>)
        : Effect.suspend(() => body.apply(this, args) as Effect.Effect<unknown, unknown, unknown>)
      for (const pipeable of pipeables) effect = pipeable(effect, ...args)
      return span(effect as Effect.Effect<unknown, unknown, unknown>)
    }
    return Object.defineProperty(traced, "length", { value: body.length, configurable: true })
  }) as never

/**
 * `Effect.annotateCurrentSpan(key, value)` when the tracer is on; nothing otherwise (asking for a
 * span that is not there builds an exception with its stack trace).
 */
export const annotate = (key: string, value: unknown): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => (fiber.getFiberRef(FiberRef.currentTracerEnabled) ? Effect.annotateCurrentSpan(key, value) : Effect.void))
