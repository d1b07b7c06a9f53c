/**
 * Child processes of a bench program: the simulator and gateway processes, each logging to a file
 * under one temporary directory, all killed when the program ends (normally, on an error, or on
 * SIGINT/SIGTERM). Redis and PostgreSQL come from `test/support/services.ts`, whose own hooks
 * stop them; `shutdown()` stops them too.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { findFreePort, stopAll } from "../../test/support/services.js"

export const root = new URL("../..", import.meta.url).pathname
export const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "accel-bench-"))

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
export { findFreePort, sleep }

const children = new Set<ChildProcess>()
let shuttingDown = false

const killAllSync = () => {
  shuttingDown = true
  for (const child of children) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    } catch {
      child.kill("SIGKILL")
    }
  }
  children.clear()
}
process.on("exit", killAllSync)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    console.error(`\n[bench] ${signal}: stopping every child`)
    killAllSync()
    void stopAll().finally(() => process.exit(130))
  })
}

/** Kills every child and stops Redis/PostgreSQL. */
export const shutdown = async () => {
  killAllSync()
  await stopAll()
}

/** Polls `url` until it answers below 500, or fails after `timeoutMs`. */
export const waitForHttp = async (url: string, timeoutMs = 60_000, isUp: (status: number) => boolean = (s) => s < 500) => {
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (isUp(res.status)) return
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not come up within ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** One managed process; `exits` records every exit, `expectExit` marks the next one as ours. */
export interface Managed {
  readonly name: string
  readonly logFile: string
  readonly child: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** true once the process exited without us asking for it. */
  unexpectedExit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  expected: boolean
  readonly alive: () => boolean
  /** Sends `signal` and waits (bounded) for the exit; SIGKILL after `graceMs`. */
  readonly stop: (signal?: NodeJS.Signals, graceMs?: number) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly logTail: (lines?: number) => string
}

export const spawnManaged = (name: string, args: ReadonlyArray<string>, env: Record<string, string>): Managed => {
  const logFile = path.join(logDir, `${name}.log`)
  const fd = fs.openSync(logFile, "a")
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", fd, fd],
    detached: true
  })
  fs.closeSync(fd)
  children.add(child)
  const managed: Managed = {
    name,
    logFile,
    child,
    unexpectedExit: undefined,
    expected: false,
    exited: new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        children.delete(child)
        if (!managed.expected && !shuttingDown) {
          managed.unexpectedExit = { code, signal }
          console.error(`[bench] ${name} exited unexpectedly (code ${code}, signal ${signal}); log ${logFile}`)
        }
        resolve({ code, signal })
      })
    }),
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async (signal = "SIGTERM", graceMs = 15_000) => {
      managed.expected = true
      if (managed.alive()) {
        try {
          process.kill(-child.pid!, signal)
        } catch {
          child.kill(signal)
        }
        const timer = setTimeout(() => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            child.kill("SIGKILL")
          }
        }, graceMs)
        const result = await managed.exited
        clearTimeout(timer)
        return result
      }
      return managed.exited
    },
    logTail: (lines = 30) => {
      try {
        return fs.readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n")
      } catch {
        return ""
      }
    }
  }
  return managed
}

export interface SimulatorOptions {
  readonly port: number
  readonly env?: Record<string, string>
}

/** The simulator in its own process (`tsx src/simulator/main.ts`). */
export const startSimulator = async (options: SimulatorOptions) => {
  const proc = spawnManaged(`simulator-${options.port}-${Date.now()}`, ["--import", "tsx", "src/simulator/main.ts"], {
    SIM_PORT: String(options.port),
    SIM_HOST: "127.0.0.1",
    LOG_LEVEL: "warning",
    ...options.env
  })
  const url = `http://127.0.0.1:${options.port}`
  await Promise.race([
    waitForHttp(`${url}/__sim/stats`),
    proc.exited.then(({ code, signal }) => {
      throw new Error(`the simulator exited during start (code ${code}, signal ${signal}):\n${proc.logTail()}`)
    })
  ])
  return { proc, url, port: options.port }
}

/** Key of the token fingerprints of every bench gateway (required with Redis or PostgreSQL). */
export const BENCH_FINGERPRINT_SECRET = "bench-fingerprint-secret-0123456789abcdef"

export interface GatewayOptions {
  readonly name: string
  readonly port: number
  readonly env: Record<string, string>
  /** Node flags before the entry point (e.g. `--cpu-prof`, which NODE_OPTIONS does not accept). */
  readonly nodeArgs?: ReadonlyArray<string>
}

/**
 * The node flags `npm start` gives the gateway (`tsx <flags> src/main.ts` in package.json), so a
 * bench gateway runs as a started one does.
 */
export const startFlags = (): ReadonlyArray<string> => {
  const start = (JSON.parse(fs.readFileSync(path.join(process.cwd(), "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start
  const match = /^tsx((?: --[^ ]+)*) src\/main\.ts$/.exec(start)
  if (match === null) throw new Error(`package.json's start script is not "tsx [--flags] src/main.ts": ${start}`)
  return match[1]!.split(" ").filter((flag) => flag !== "")
}

/**
 * Extra node flags for every bench gateway, from `BENCH_GATEWAY_NODE_ARGS` (space-separated, e.g.
 * `--trace-gc`): to look inside a bench's gateways without editing the bench.
 */
const extraGatewayFlags = (): ReadonlyArray<string> => (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter((flag) => flag !== "")

/** A gateway process (`node <npm start's flags> --import tsx src/main.ts`), ready when `/health/live` answers. */
export const startGateway = async (options: GatewayOptions) => {
  const flags = [...startFlags(), ...(options.nodeArgs ?? []), ...extraGatewayFlags()]
  const proc = spawnManaged(`${options.name}-${Date.now()}`, [...flags, "--import", "tsx", "src/main.ts"], {
    PORT: String(options.port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warning",
    // The load comes from one loopback address: the per-client bounds are lifted unless asked for.
    CLIENT_LIMITS: "off",
    // Required with Redis or PostgreSQL; one key for every gateway of a bench, so instances agree.
    FINGERPRINT_SECRET: BENCH_FINGERPRINT_SECRET,
    ...options.env
  })
  const url = `http://127.0.0.1:${options.port}`
  await Promise.race([
    waitForHttp(`${url}/health/live`, 90_000),
    proc.exited.then(({ code, signal }) => {
      throw new Error(`${options.name} exited during start (code ${code}, signal ${signal}):\n${proc.logTail()}`)
    })
  ])
  return { proc, url, port: options.port, name: options.name }
}
export type Gateway = Awaited<ReturnType<typeof startGateway>>

/** Runs a bench program's `main` (its exit code), stops every child, and exits (2 on a throw). */
export const runMain = (main: () => Promise<number>): void => {
  main()
    .then(async (code) => {
      await shutdown()
      process.exit(code)
    })
    .catch(async (error) => {
      console.error(error)
      await shutdown()
      process.exit(2)
    })
}
