/**
 * The gateway as `npm start` runs it: a child process on the embedded default (built-in
 * simulator, memory only), its log lines collected, killed when the scope closes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Effect } from "effect"
import { findFreePort } from "../support/services.js"

/** A gateway process and what it has logged so far. */
export interface GatewayProcess {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly port: number
  readonly simPort: number
}

/** Starts `src/main.ts` with `env` added to this process's environment; waits until it listens. */
export const startGatewayProcess = (env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<GatewayProcess> => {
      const port = await findFreePort()
      const simPort = await findFreePort()
      const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
        cwd: new URL("../..", import.meta.url).pathname,
        env: { ...process.env, PORT: String(port), SIM_PORT: String(simPort), SIM_CORPUS_SIZE: "500", LOG_FORMAT: "json", CLIENT_LIMITS: "off", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      let buffered = ""
      child.stdout!.setEncoding("utf8").on("data", (text: string) => {
        buffered += text
        const parts = buffered.split("\n")
        buffered = parts.pop()!
        lines.push(...parts.filter((l) => l.trim() !== ""))
      })
      child.stderr!.setEncoding("utf8").on("data", (text: string) => lines.push(`stderr: ${text}`))
      const deadline = Date.now() + 60_000
      while (!lines.some((l) => l.includes("gateway listening"))) {
        if (Date.now() > deadline || child.exitCode !== null) {
          // The release never runs for an acquire that failed: end the process here.
          child.kill("SIGKILL")
          throw new Error(`gateway did not start:\n${lines.join("\n")}`)
        }
        await new Promise((r) => setTimeout(r, 50))
      }
      return { child, lines, port, simPort }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )
