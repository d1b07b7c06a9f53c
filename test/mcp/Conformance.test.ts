/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against
 * the gateway's `/mcp`, on the scenarios that apply to a tools-only server whose tools are the
 * site's methods. README ("MCP") lists the scenarios that do not apply and why.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startGateway } from "../http/fixtures.js"

/** The scenarios that apply to a tools-only server. */
export const APPLICABLE = ["server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection"] as const

const cli = join(process.cwd(), "node_modules/@modelcontextprotocol/conformance/dist/index.js")
const loader = join(process.cwd(), "test/mcp/support/conformance-loader.mjs")

interface Check {
  readonly id: string
  readonly status: string
  readonly errorMessage?: string
}

/** Runs one scenario; resolves with its exit code, its checks and its output. */
const runScenario = (url: string, scenario: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "mcp-conformance-"))),
    (dir) =>
      Effect.async<{ code: number; checks: ReadonlyArray<Check>; output: string }>((resume) => {
        const child = execFile(
          process.execPath,
          ["--import", loader, cli, "server", "--url", url, "--scenario", scenario, "-o", dir],
          { timeout: 90_000, maxBuffer: 4 * 1024 * 1024 },
          (error, stdout, stderr) => {
            const checks = readdirSync(dir).flatMap((entry) => {
              try {
                return JSON.parse(readFileSync(join(dir, entry, "checks.json"), "utf8")) as Array<Check>
              } catch {
                return []
              }
            })
            resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, checks, output: stdout + stderr }))
          }
        )
        return Effect.sync(() => child.kill("SIGKILL"))
      }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

describe("MCP conformance suite (server mode)", () => {
  it.scopedLive("every applicable scenario passes against /mcp", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      const url = `${base}/mcp`
      const runs = yield* Effect.forEach(APPLICABLE, (scenario) => Effect.map(runScenario(url, scenario), (run) => ({ scenario, ...run })), {
        concurrency: 2
      })
      for (const run of runs) {
        const failed = run.checks.filter((check) => check.status === "FAILURE")
        assert.strictEqual(run.code, 0, `${run.scenario}: ${run.output.slice(-2000)}`)
        assert.isAbove(run.checks.filter((check) => check.status === "SUCCESS").length, 0, `${run.scenario} passed checks`)
        assert.deepStrictEqual(failed, [], run.scenario)
      }
    }), 180_000)
})
