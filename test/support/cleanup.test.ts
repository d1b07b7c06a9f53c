import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { stateDir, sweepOrphans } from "./services.js"

const fixture = fileURLToPath(new URL("./fixtures/hold-servers.ts", import.meta.url))

/** True while `pid` is a live, non-zombie process. */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const eventually = (check: () => boolean, what: string) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail(what))).pipe(
    Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 })
  )

describe("nothing outlives the run", () => {
  it.live("a process SIGKILLed with servers up: its watchdogs kill them and remove their dirs", () =>
    Effect.gen(function*() {
      const child = spawn(process.execPath, ["--import", "tsx", fixture], { stdio: ["ignore", "pipe", "inherit"] })
      const line = yield* Effect.async<string, Error>((resume) => {
        let out = ""
        child.stdout.setEncoding("utf8").on("data", (s: string) => {
          out += s
          if (out.includes("\n")) resume(Effect.succeed(out.split("\n")[0] ?? ""))
        })
        child.once("exit", (code) => resume(Effect.fail(new Error(`fixture exited with ${code}`))))
      }).pipe(Effect.timeout("30 seconds"))
      const started = JSON.parse(line) as Record<"redis" | "postgres", { pid: number; dir: string }>
      assert.isTrue(alive(started.redis.pid) && alive(started.postgres.pid))

      child.kill("SIGKILL")
      yield* eventually(() => !alive(started.redis.pid), "redis-server still running")
      yield* eventually(() => !alive(started.postgres.pid), "postgres still running")
      yield* eventually(() => !fs.existsSync(started.redis.dir), "redis dir still there")
      yield* eventually(() => !fs.existsSync(started.postgres.dir), "postgres dir still there")
      // Its state file stays behind (nothing ran in it after SIGKILL) until a later start sweeps it.
      const stateFile = path.join(stateDir, `${child.pid}.json`)
      sweepOrphans()
      assert.isFalse(fs.existsSync(stateFile))
    }))

  it.scopedLive("a later start kills what a dead owner recorded in its state file", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accel-redis-"))
      // Stand-in for an orphaned server: a process working inside the recorded directory.
      const orphan = spawn("sleep", ["30"], { cwd: dir, detached: true, stdio: "ignore" })
      const orphanExit = new Promise<void>((resolve) => orphan.once("exit", () => resolve()))
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (orphan.exitCode === null && orphan.signalCode === null) orphan.kill("SIGKILL")
          fs.rmSync(dir, { recursive: true, force: true })
        })
      )
      const deadOwner = spawn("true")
      yield* Effect.promise(() => new Promise((resolve) => deadOwner.once("exit", resolve)))
      const file = path.join(stateDir, `${deadOwner.pid}.json`)
      fs.mkdirSync(stateDir, { recursive: true })
      fs.writeFileSync(
        file,
        JSON.stringify({
          owner: { pid: deadOwner.pid, startTime: "0" },
          services: [{ kind: "redis", pid: orphan.pid, port: 1, dir }]
        })
      )

      // Another process starting a server may sweep first; either way the outcome is the same.
      sweepOrphans()

      yield* Effect.promise(() => orphanExit).pipe(Effect.timeout("5 seconds"))
      assert.isFalse(fs.existsSync(dir))
      assert.isFalse(fs.existsSync(file))
    }))
})
