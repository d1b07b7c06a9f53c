/**
 * The demo guard, as `npm start` runs the gateway: without `DRUPAL_URL` it says loudly that it is
 * the demo and binds loopback; a non-loopback `HOST` is refused at start unless `DEMO_PUBLIC=true`.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { once } from "node:events"
import { Effect } from "effect"
import { findFreePort } from "../support/services.js"
import { startGatewayProcess } from "./gatewayProcess.js"

/** Runs `src/main.ts` with `env` until it exits (at most 60 s); its exit code and output. */
const runToExit = (env: Record<string, string>) =>
  Effect.promise(async () => {
    const { DRUPAL_URL: _ignored, ...inherited } = process.env
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: new URL("../..", import.meta.url).pathname,
      env: { ...inherited, PORT: String(await findFreePort()), SIM_PORT: String(await findFreePort()), LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout!.setEncoding("utf8").on("data", (text: string) => (output += text))
    child.stderr!.setEncoding("utf8").on("data", (text: string) => (output += text))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    const [code] = await once(child, "exit")
    clearTimeout(timer)
    return { code: code as number | null, output }
  })

describe("the demo guard (no DRUPAL_URL)", () => {
  it.scopedLive("says loudly it is the demo with demo tokens, as a warning, and listens on loopback", () =>
    Effect.gen(function*() {
      const { lines, port } = yield* startGatewayProcess()
      const demo = lines.map((l) => JSON.parse(l) as { message: string; logLevel: string }).find((l) => l.message.includes("DEMO MODE"))
      assert.isDefined(demo)
      assert.strictEqual(demo!.logLevel, "WARN")
      assert.include(demo!.message, "one is an administrator")
      assert.notInclude(demo!.message, "demo-admin-token", "the log names no token, not even a demo one")
      const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/health`))
      assert.strictEqual(health.status, 200)
    }))

  it.live("a non-loopback HOST is refused at start, naming DEMO_PUBLIC", () =>
    Effect.gen(function*() {
      const refused = yield* runToExit({ HOST: "0.0.0.0" })
      assert.notStrictEqual(refused.code, 0)
      assert.include(refused.output, "DEMO_PUBLIC=true")
      assert.notInclude(refused.output, "gateway listening")
    }))

  it.scopedLive("DEMO_PUBLIC=true exposes the demo on purpose", () =>
    Effect.gen(function*() {
      const { port } = yield* startGatewayProcess({ HOST: "0.0.0.0", DEMO_PUBLIC: "true" })
      const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/health`))
      assert.strictEqual(health.status, 200)
    }))
})
