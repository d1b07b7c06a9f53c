/**
 * Warnings said at most once per interval and topic: for failures that may repeat thousands of
 * times a second under load (a tier read failing, a lease not taken), where their count lives
 * in a metric and the log only has to say that, and why, it is happening.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

/** A warning logger: `(topic, message, annotations)`, silent for a topic said less than `intervalMs` ago. */
export type ThrottledWarning = (
  topic: string,
  message: string,
  annotations: Record<string, unknown>
) => Effect.Effect<void>

/**
 * A {@link ThrottledWarning}. Topics are the caller's fixed set (a tier name, one constant): the
 * memory it keeps is one timestamp per topic.
 */
export const throttledWarning = (intervalMs: number): ThrottledWarning => {
  const lastSaid = new Map<string, number>()
  return (topic, message, annotations) =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      if (now - (lastSaid.get(topic) ?? -Infinity) < intervalMs) return Effect.void
      lastSaid.set(topic, now)
      return Effect.logWarning(message).pipe(Effect.annotateLogs(annotations))
    })
}

/** The message of an error for a log annotation (never its stack). */
export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))
