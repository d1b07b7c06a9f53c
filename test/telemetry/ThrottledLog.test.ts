import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, TestClock } from "effect"
import { throttledWarning } from "../../src/telemetry/ThrottledLog.js"

describe("throttledWarning", () => {
  it.effect("says a topic at most once per interval; topics are apart", () =>
    Effect.gen(function*() {
      const said: Array<string> = []
      const logger = Logger.make(({ message }) => said.push(String(Array.isArray(message) ? message[0] : message)))
      const warn = throttledWarning(5_000)
      const run = (topic: string) => warn(topic, `${topic} failed`, { topic }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      yield* run("redis")
      yield* run("redis")
      yield* run("postgres")
      yield* TestClock.adjust("4999 millis")
      yield* run("redis")
      yield* TestClock.adjust("1 millis")
      yield* run("redis")
      assert.deepStrictEqual(said, ["redis failed", "postgres failed", "redis failed"])
    }))
})
