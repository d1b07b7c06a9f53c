/**
 * Vitest reporter that ends the run with one plain line, alone on its line:
 *
 *     tests: N passed, M failed[, K skipped]
 *
 * CI tooling reads that line, so it is written last: when the process exits in `vitest run`
 * (after the default reporter's summary and the global teardown), right after the run in watch
 * mode. Failed counts failed tests, plus each test file that failed without a failing test
 * (import error, failing hook), plus each unhandled error, plus tests that never finished; so
 * `0 failed` is printed only when the run really had no failure. An interrupted run prints nothing.
 */
import type { SerializedError } from "vitest"
import type { Reporter, TestModule, TestRunEndReason, Vitest } from "vitest/node"

export class SummaryLineReporter implements Reporter {
  private watch = false
  private line: string | undefined

  onInit(vitest: Vitest): void {
    this.watch = vitest.config.watch
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason
  ): void {
    if (reason === "interrupted") return
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      let failedHere = 0
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "skipped") skipped++
        else failedHere++
      }
      if (failedHere === 0 && module.state() === "failed") failedHere = 1
      failed += failedHere
    }
    failed += unhandledErrors.length
    const line = `tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`
    if (this.watch) {
      setImmediate(() => process.stdout.write(`\n${line}\n`))
      return
    }
    // Prepended: vitest's own exit listener may call process.exit(), which skips later listeners.
    if (this.line === undefined) process.prependOnceListener("exit", () => process.stdout.write(`\n${this.line}\n`))
    this.line = line
  }
}
