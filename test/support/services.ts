/**
 * Real `redis-server` and PostgreSQL servers for the test suite, the bench programs and developers.
 *
 * Each `start*` call launches a private server on a free loopback port with its own temporary
 * directory. Servers are children of the calling process, each in its own process group, so a
 * Ctrl-C in the terminal reaches the caller only and the caller decides how they stop.
 *
 * Cleanup happens on four levels, so that no server outlives the run that started it:
 *
 * 1. `stop()` on a handle (graceful, then forced), which removes the temporary directory.
 * 2. `process.on("exit")`: every server still up is SIGKILLed synchronously and its directory
 *    removed; `SIGINT`/`SIGTERM`/`SIGHUP` stop every server and then, when nobody else listens to
 *    that signal, re-raise it so the process ends as it would have. In a forked child (a vitest
 *    worker) the IPC `disconnect` that follows the parent's death does the same as `exit`.
 * 3. A watchdog per server: a tiny detached `sh` that reads a pipe from this process. When this
 *    process dies, even by SIGKILL, the pipe closes and the watchdog kills every process whose
 *    working directory is inside the server's directory, then removes the directory.
 * 4. A state file per owning process under `$TMPDIR/drupal-accelerator-services/` that records
 *    pids, ports and directories. The first start in any later run kills what a dead owner left
 *    behind (only processes whose working directory is inside a recorded directory) and removes
 *    those directories.
 *
 * Processes are identified by their working directory (`/proc/<pid>/cwd`): redis-server
 * `chdir`s into `--dir` and postgres into its data directory, so a recycled pid is never killed.
 *
 * The API is Promise based because globalSetup, bench scripts and the CLI are plain async code;
 * `redisServer` / `postgresServer` wrap it as scoped Effects for specs.
 *
 * @module
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Data, Effect, type Scope } from "effect"

/** Which server a handle or an error is about. */
export type ServiceKind = "redis" | "postgres"

/** Any failure to locate, start, restart or stop a server. `message` says what to do. */
export class ServiceError extends Data.TaggedError("ServiceError")<{
  readonly service: ServiceKind
  readonly op: "locate" | "prepare" | "start" | "restart" | "stop"
  readonly message: string
  readonly cause?: unknown
}> {}

/** What both handles share. All methods are safe to call concurrently and repeatedly. */
export interface ServerHandle {
  readonly kind: ServiceKind
  /** Connection URL for clients (`redis://…` or `postgres://…`). */
  readonly url: string
  /** Loopback TCP port; kept across `restart()`. */
  readonly port: number
  /** Server version, e.g. `7.0.15` or `15.18`. */
  readonly version: string
  /** Temporary directory owned by this server; removed by `stop()`. Kept across `restart()`. */
  readonly dir: string
  /** Pid of the running server process, `undefined` while it is down. */
  readonly pid: number | undefined
  /** Graceful shutdown (forced after a few seconds), then the directory is removed. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL the server and its children, to simulate a crash. The directory is kept. */
  kill(): Promise<void>
  /** Start the server again on the same port and directory (after `kill()`, or stop+start if up). */
  restart(): Promise<void>
}

/** A running `redis-server`. Data is not persisted (`--save '' --appendonly no`). */
export interface RedisServer extends ServerHandle {
  readonly kind: "redis"
}

/** A running PostgreSQL server, with trust auth for user `postgres` on loopback. */
export interface PostgresServer extends ServerHandle {
  readonly kind: "postgres"
  /** Name of the database created at start (`accelerator` by default). */
  readonly database: string
  /** Full `SELECT version()` text. */
  readonly versionString: string
}

export interface RedisOptions {
  /** Fixed port; by default a free one is picked (and re-picked if taken in the meantime). */
  readonly port?: number
  /** Path of `redis-server`; default: `$REDIS_SERVER_BIN`, `PATH`, then usual locations. */
  readonly bin?: string
  /** Deadline for the server to answer PING, default 15 s. */
  readonly startTimeoutMs?: number
  /** Extra command line arguments, e.g. `["--maxmemory", "64mb"]`. */
  readonly args?: ReadonlyArray<string>
}

export interface PostgresOptions {
  /** Fixed port; by default a free one is picked (and re-picked if taken in the meantime). */
  readonly port?: number
  /** Folder holding `postgres`, `initdb`, `pg_isready`, `psql`; default: `$PG_BINDIR`, `PATH`, `/usr/lib/postgresql/<newest>/bin`. */
  readonly binDir?: string
  /** Database to create, default `accelerator`. */
  readonly database?: string
  /** Deadline for the server to accept connections, default 30 s. */
  readonly startTimeoutMs?: number
  /** Extra `-c name=value` settings. */
  readonly settings?: Readonly<Record<string, string>>
}

// ---------------------------------------------------------------------------------------------
// Locating binaries

const isExecutableFile = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

const onPath = (name: string): string | undefined => {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    if (dir !== "" && isExecutableFile(path.join(dir, name))) return path.join(dir, name)
  }
  return undefined
}

const locateRedis = (explicit: string | undefined): string => {
  const candidates = [
    explicit,
    process.env["REDIS_SERVER_BIN"],
    onPath("redis-server"),
    "/usr/bin/redis-server",
    "/usr/local/bin/redis-server",
    "/usr/sbin/redis-server"
  ]
  if (explicit !== undefined && !isExecutableFile(explicit)) {
    throw new ServiceError({ service: "redis", op: "locate", message: `redis-server not executable at ${explicit}` })
  }
  for (const c of candidates) if (c !== undefined && c !== "" && isExecutableFile(c)) return c
  throw new ServiceError({
    service: "redis",
    op: "locate",
    message: "redis-server not found on PATH nor in /usr/bin, /usr/local/bin. " +
      "Install it with `apt-get install -y redis-server` (or run `bash test/support/prepare.sh` as root)"
  })
}

interface PgBinaries {
  readonly postgres: string
  readonly initdb: string
  readonly pgIsReady: string
  readonly psql: string
}

const pgBinariesIn = (dir: string): PgBinaries | undefined => {
  const postgres = path.join(dir, "postgres")
  const initdb = path.join(dir, "initdb")
  if (!isExecutableFile(postgres) || !isExecutableFile(initdb)) return undefined
  const client = (name: string) => {
    const inDir = path.join(dir, name)
    return isExecutableFile(inDir) ? inDir : onPath(name)
  }
  const pgIsReady = client("pg_isready")
  const psql = client("psql")
  if (pgIsReady === undefined || psql === undefined) return undefined
  return { postgres, initdb, pgIsReady, psql }
}

const locatePostgres = (explicit: string | undefined): PgBinaries => {
  const dirs: Array<string> = []
  if (explicit !== undefined) {
    const found = pgBinariesIn(explicit)
    if (found) return found
    throw new ServiceError({
      service: "postgres",
      op: "locate",
      message: `no postgres, initdb, pg_isready and psql in ${explicit}`
    })
  }
  const fromEnv = process.env["PG_BINDIR"]
  if (fromEnv !== undefined && fromEnv !== "") dirs.push(fromEnv)
  const postgresOnPath = onPath("postgres")
  if (postgresOnPath !== undefined) {
    // /usr/local/bin/postgres may be a symlink into /usr/lib/postgresql/N/bin: use the real folder.
    try {
      dirs.push(path.dirname(fs.realpathSync(postgresOnPath)))
    } catch {
      dirs.push(path.dirname(postgresOnPath))
    }
  }
  try {
    const versions = fs.readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v))
    versions.sort((a, b) => Number(b) - Number(a))
    for (const v of versions) dirs.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    // no Debian layout
  }
  dirs.push("/usr/local/pgsql/bin")
  for (const dir of dirs) {
    const found = pgBinariesIn(dir)
    if (found) return found
  }
  throw new ServiceError({
    service: "postgres",
    op: "locate",
    message: `PostgreSQL server binaries (postgres, initdb, pg_isready, psql) not found in PATH nor in ${
      dirs.join(", ")
    }. Install them with \`apt-get install -y postgresql-15\` (or run \`bash test/support/prepare.sh\` as root)`
  })
}

/** uid/gid of the `postgres` OS user when running as root (postgres refuses to run as root). */
const postgresUser = (): { readonly uid: number; readonly gid: number } | undefined => {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined
  let passwd = ""
  try {
    passwd = fs.readFileSync("/etc/passwd", "utf8")
  } catch {
    // handled below
  }
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":")
    if (name === "postgres" && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) }
  }
  throw new ServiceError({
    service: "postgres",
    op: "prepare",
    message: "running as root but there is no `postgres` OS user to run the server as " +
      "(it is created by the postgresql-15 package: `apt-get install -y postgresql-15`)"
  })
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A timer for `Promise.race` deadlines that does not keep the process alive once the race is won. */
const deadline = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

/** A free TCP port on 127.0.0.1, found by binding port 0. */
export const findFreePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : undefined
      server.close(() => port === undefined ? reject(new Error("no port assigned")) : resolve(port))
    })
  })

interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a short-lived helper (initdb, psql, pg_isready) to completion, killed after `timeoutMs`. */
const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly timeoutMs: number }
): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const { timeoutMs, ...spawnOptions } = options
    const child = spawn(file, args, { ...spawnOptions, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s))
    child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const logTail = (file: string, from: number, lines = 25): string => {
  try {
    const text = fs.readFileSync(file, "utf8").slice(from)
    return text.split("\n").slice(-lines).join("\n").trim()
  } catch {
    return ""
  }
}

const fileSize = (file: string): number => {
  try {
    return fs.statSync(file).size
  } catch {
    return 0
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat). */
const processStartTime = (pid: number): string | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Pids of processes whose working directory is `dir` or inside it (Linux; empty elsewhere). */
const pidsWorkingIn = (dir: string): Array<number> => {
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return []
  }
  const pids: Array<number> = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cwd = fs.readlinkSync(`/proc/${entry}/cwd`)
      if (cwd === dir || cwd.startsWith(dir + "/")) pids.push(Number(entry))
    } catch {
      // gone, a zombie, or not ours to see
    }
  }
  return pids
}

const sigkill = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
}

/** SIGKILLs every process working inside `dir` and waits (bounded) until none is left. */
const reapWorkingIn = async (dir: string, timeoutMs = 5_000): Promise<void> => {
  const until = Date.now() + timeoutMs
  for (;;) {
    const pids = pidsWorkingIn(dir)
    if (pids.length === 0 || Date.now() > until) return
    pids.forEach(sigkill)
    await sleep(20)
  }
}

const removeDir = (dir: string) => {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// State file, orphan sweep and process-wide cleanup

/** Folder of the per-owner state files used to find orphans of runs that were SIGKILLed. */
export const stateDir = path.join(os.tmpdir(), "drupal-accelerator-services")
const stateFile = path.join(stateDir, `${process.pid}.json`)

interface StateEntry {
  readonly kind: ServiceKind
  readonly pid: number | null
  readonly port: number
  readonly dir: string
}

interface StateFile {
  readonly owner: { readonly pid: number; readonly startTime: string | null }
  readonly services: ReadonlyArray<StateEntry>
}

/** What every server needs from the process: its place in the registry and the cleanup hooks. */
interface Tracked {
  readonly kind: ServiceKind
  readonly dir: string
  readonly port: number
  readonly pid: number | undefined
  stop(): Promise<void>
  killSync(): void
}

/**
 * One registry per process, not per module instance: vitest re-evaluates this module for every
 * spec file in the same worker, and all instances must share one state file and one set of hooks.
 */
interface Registry {
  readonly live: Set<Tracked>
  swept: boolean
  hooks: { readonly exit: () => void; readonly signal: (signal: NodeJS.Signals) => void } | undefined
}

const registry: Registry = ((globalThis as Record<symbol, unknown>)[Symbol.for("drupal-accelerator/services")] ??= {
  live: new Set<Tracked>(),
  swept: false,
  hooks: undefined
}) as Registry
const live = registry.live

const writeState = () => {
  try {
    if (live.size === 0) {
      fs.rmSync(stateFile, { force: true })
      return
    }
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 })
    const state: StateFile = {
      owner: { pid: process.pid, startTime: processStartTime(process.pid) ?? null },
      services: [...live].map((s) => ({ kind: s.kind, pid: s.pid ?? null, port: s.port, dir: s.dir }))
    }
    const tmp = `${stateFile}.tmp`
    fs.writeFileSync(tmp, JSON.stringify(state))
    fs.renameSync(tmp, stateFile)
  } catch {
    // best effort: the watchdogs still clean up
  }
}

/**
 * Kills servers and removes directories recorded by owners that are no longer alive (a run that
 * was SIGKILLed before its watchdogs could act). Runs once per process, at the first start.
 * Returns what it removed.
 */
export const sweepOrphans = (): Array<StateEntry> => {
  registry.swept = true
  const removed: Array<StateEntry> = []
  let files: Array<string>
  try {
    files = fs.readdirSync(stateDir).filter((f) => f.endsWith(".json"))
  } catch {
    return removed
  }
  for (const file of files) {
    const full = path.join(stateDir, file)
    let state: StateFile
    try {
      state = JSON.parse(fs.readFileSync(full, "utf8")) as StateFile
    } catch {
      fs.rmSync(full, { force: true })
      continue
    }
    const owner = state.owner
    if (owner.pid === process.pid) continue
    if (isAlive(owner.pid) && (owner.startTime === null || processStartTime(owner.pid) === owner.startTime)) continue
    for (const entry of state.services) {
      // Only absolute directories of our own naming, so a corrupt file cannot aim elsewhere.
      if (!path.isAbsolute(entry.dir) || !/accel-(redis|pg)-[^/]+$/.test(entry.dir)) continue
      const existed = fs.existsSync(entry.dir)
      const pids = pidsWorkingIn(entry.dir)
      pids.forEach(sigkill)
      const started = Date.now()
      while (pidsWorkingIn(entry.dir).length > 0 && Date.now() - started < 3_000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
      }
      removeDir(entry.dir)
      if (pids.length > 0 || existed) removed.push(entry)
      if (pids.length > 0) {
        process.stderr.write(
          `[services] killed ${entry.kind} left by dead run ${owner.pid} (pids ${pids.join(", ")}), removed ${entry.dir}\n`
        )
      }
    }
    fs.rmSync(full, { force: true })
  }
  return removed
}

const onExit = () => {
  for (const s of live) s.killSync()
  live.clear()
  writeState()
}

const signals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM", "SIGHUP"]

const onSignal = (signal: NodeJS.Signals) => {
  void stopAll().finally(() => {
    // Re-raise only when we are the last listener, so we do not take over another handler's job.
    if (process.listenerCount(signal) === 1) {
      uninstallHandlers()
      process.kill(process.pid, signal)
    }
  })
}

const installHandlers = () => {
  if (registry.hooks !== undefined) return
  registry.hooks = { exit: onExit, signal: onSignal }
  // Prepended: vitest's own exit/SIGINT listeners call process.exit(), which skips later listeners.
  process.prependListener("exit", onExit)
  for (const s of signals) process.prependListener(s, onSignal)
  // A forked child (a vitest worker) whose parent died: kill our servers now, before anything
  // else reacts (test/support/workerSetup.ts then ends the worker itself).
  if (process.channel !== undefined) process.prependListener("disconnect", onExit)
}

const uninstallHandlers = () => {
  const hooks = registry.hooks
  if (hooks === undefined) return
  registry.hooks = undefined
  process.off("exit", hooks.exit)
  for (const s of signals) process.off(s, hooks.signal)
  process.off("disconnect", hooks.exit)
}

/** Stops every server started by this process. */
export const stopAll = async (): Promise<void> => {
  await Promise.allSettled([...live].map((s) => s.stop()))
}

// ---------------------------------------------------------------------------------------------
// One supervised server process (restartable) with its directory and watchdog

const WATCHDOG = `
trap '' INT TERM HUP
dir=$1
while IFS= read -r line; do
  [ "$line" = done ] && exit 0
done
i=0
while [ $i -lt 100 ]; do
  pids=$(find /proc -mindepth 2 -maxdepth 2 -name cwd \\( -lname "$dir" -o -lname "$dir/*" \\) 2>/dev/null | cut -d/ -f3)
  [ -z "$pids" ] && break
  kill -KILL $pids 2>/dev/null
  sleep 0.05
  i=$((i+1))
done
rm -rf -- "$dir"
`

interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

class Supervisor implements Tracked {
  child: ChildProcess | undefined = undefined
  exited: Promise<ChildExit> = Promise.resolve({ code: null, signal: null })
  stopping: Promise<void> | undefined = undefined
  private watchdog: ChildProcess | undefined

  constructor(
    readonly kind: ServiceKind,
    readonly dir: string,
    public port: number,
    private readonly gracefulSignal: NodeJS.Signals
  ) {
    if (!registry.swept) sweepOrphans()
    installHandlers()
    live.add(this)
    this.watchdog = this.startWatchdog()
    writeState()
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get stopped(): boolean {
    return this.stopping !== undefined
  }

  private startWatchdog(): ChildProcess | undefined {
    try {
      const wd = spawn("/bin/sh", ["-c", WATCHDOG, "accelerator-watchdog", this.dir], {
        detached: true,
        cwd: "/",
        stdio: ["pipe", "ignore", "ignore"]
      })
      wd.on("error", () => {})
      wd.stdin?.on("error", () => {})
      wd.unref()
      ;(wd.stdin as net.Socket | null)?.unref()
      return wd
    } catch {
      return undefined
    }
  }

  /** Spawns the server process as the leader of a new process group, logging to `logFile`. */
  spawn(file: string, args: ReadonlyArray<string>, logFile: string, options: SpawnOptions): ChildProcess {
    // stop() may have run while a start or restart was still under way.
    if (this.stopped) throw new StartFailure("stopped while starting", "")
    const log = fs.openSync(logFile, "a")
    let child: ChildProcess
    try {
      child = spawn(file, args, { ...options, detached: true, stdio: ["ignore", log, log] })
    } finally {
      fs.closeSync(log)
    }
    this.child = child
    this.exited = new Promise<ChildExit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }))
      child.once("error", () => resolve({ code: null, signal: null }))
    })
    void this.exited.then(() => {
      if (this.child === child) this.child = undefined
      writeState()
    })
    writeState()
    return child
  }

  isUp(child: ChildProcess | undefined = this.child): child is ChildProcess {
    return child !== undefined && child.exitCode === null && child.signalCode === null && child.pid !== undefined
  }

  /** Brings the current process down: graceful signal first unless `force`, then SIGKILL. */
  async down(force: boolean): Promise<void> {
    const child = this.child
    const pid = child?.pid
    if (this.isUp(child) && pid !== undefined) {
      const exited = this.exited
      if (!force) {
        child.kill(this.gracefulSignal)
        await Promise.race([exited, deadline(10_000)])
      }
      if (this.isUp(child)) {
        try {
          process.kill(-pid, "SIGKILL")
        } catch {
          child.kill("SIGKILL")
        }
        await Promise.race([exited, deadline(5_000)])
      }
    }
    // Leftovers (e.g. postgres backends) share the working directory.
    await reapWorkingIn(this.dir)
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.down(false)
      } finally {
        removeDir(this.dir)
        this.watchdog?.stdin?.end("done\n")
        live.delete(this)
        writeState()
        if (live.size === 0) uninstallHandlers()
      }
    })()
    return this.stopping
  }

  /** Synchronous last resort for `process.on("exit")`. The watchdog finishes what this misses. */
  killSync(): void {
    const child = this.child
    const pid = child?.pid
    if (this.isUp(child) && pid !== undefined) {
      try {
        process.kill(-pid, "SIGKILL")
      } catch {
        sigkill(pid)
      }
    }
    pidsWorkingIn(this.dir).forEach(sigkill)
    removeDir(this.dir)
  }

  /** Waits until `ready()` holds, failing early with the log tail if the process exits. */
  async waitReady(
    child: ChildProcess,
    logFile: string,
    logStart: number,
    timeoutMs: number,
    ready: () => Promise<boolean>
  ): Promise<void> {
    const until = Date.now() + timeoutMs
    for (;;) {
      if (!this.isUp(child)) {
        const exit = await this.exited
        throw new StartFailure(
          `exited during start-up (code ${exit.code}, signal ${exit.signal})`,
          logTail(logFile, logStart)
        )
      }
      if (await ready()) return
      if (Date.now() > until) {
        throw new StartFailure(`not ready after ${timeoutMs} ms`, logTail(logFile, logStart))
      }
      await sleep(50)
    }
  }
}

class StartFailure extends Error {
  constructor(readonly reason: string, readonly log: string) {
    super(`${reason}${log === "" ? "" : `; log:\n${log}`}`)
  }
  get portTaken(): boolean {
    return /address already in use|could not bind|could not create any TCP\/IP sockets/i.test(this.log)
  }
}

const asServiceError = (service: ServiceKind, op: ServiceError["op"], cause: unknown): ServiceError =>
  cause instanceof ServiceError
    ? cause
    : new ServiceError({
      service,
      op,
      message: `${service === "redis" ? "redis-server" : "PostgreSQL"} ${op} failed: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      cause
    })

/** `base` with the lifecycle's members, getters kept as getters (a spread would freeze `pid`). */
const withLifecycle = <const A extends object, L extends object>(base: A, members: L): A & L =>
  Object.defineProperties(base, Object.getOwnPropertyDescriptors(members)) as A & L

/**
 * The `pid`, `stop`, `kill` and `restart` of a handle, over its supervisor: `kill` is a crash
 * (SIGKILL, directory kept), `restart` brings the server back on the same port and directory
 * (concurrent calls share one restart).
 */
const lifecycle = (
  service: ServiceKind,
  sup: Supervisor,
  relaunch: () => Promise<void>
): Pick<ServerHandle, "pid" | "stop" | "kill" | "restart"> => {
  let restarting: Promise<void> | undefined
  return {
    get pid() {
      return sup.pid
    },
    stop: () => sup.stop(),
    kill: async () => {
      if (sup.stopped) return
      await sup.down(true)
    },
    restart: () =>
      restarting ??= (async () => {
        if (sup.stopped) {
          throw new ServiceError({ service, op: "restart", message: "server was stopped; start a new one" })
        }
        try {
          await sup.down(false)
          await relaunch()
        } catch (e) {
          throw asServiceError(service, "restart", e)
        }
      })().finally(() => (restarting = undefined))
  }
}

/** Starts on `fixed` or on a free port, picking another free port when the first was taken. */
const onSomePort = async (fixed: number | undefined, launch: (port: number) => Promise<void>): Promise<number> => {
  for (let attempt = 1;; attempt++) {
    const port = fixed ?? await findFreePort()
    try {
      await launch(port)
      return port
    } catch (e) {
      if (fixed !== undefined || attempt >= 3 || !(e instanceof StartFailure) || !e.portTaken) throw e
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Sends one command over a fresh connection and returns the reply as text (errors reject). */
const redisCommand = (port: number, args: ReadonlyArray<string>, timeoutMs = 1_000): Promise<string> =>
  new Promise((resolve, reject) => {
    let settled = false
    let buffer = Buffer.alloc(0)
    const socket = net.createConnection({ host: "127.0.0.1", port })
    const finish = (error: Error | undefined, value = "") => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value)
    }
    const timer = setTimeout(() => finish(new Error("timed out")), timeoutMs)
    socket.on("connect", () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`)
    })
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      const eol = buffer.indexOf("\r\n")
      if (eol < 0) return
      const type = String.fromCharCode(buffer[0] ?? 0)
      const line = buffer.toString("utf8", 1, eol)
      if (type === "+" || type === ":") return finish(undefined, line)
      if (type === "-") return finish(new Error(line))
      if (type === "$") {
        const length = Number(line)
        if (length < 0) return finish(undefined, "")
        if (buffer.length < eol + 2 + length) return
        return finish(undefined, buffer.toString("utf8", eol + 2, eol + 2 + length))
      }
      finish(new Error(`unexpected reply type ${type}`))
    })
    socket.on("error", (error) => finish(error))
    socket.on("close", () => finish(new Error("connection closed")))
  })

const infoField = (info: string, field: string): string | undefined =>
  new RegExp(`^${field}:(.*)$`, "m").exec(info)?.[1]?.trim()

/**
 * Starts a private `redis-server` on a free loopback port and waits until it answers (the reply
 * is checked to come from this very process). Rejects with {@link ServiceError}.
 */
export const startRedis = async (options: RedisOptions = {}): Promise<RedisServer> => {
  const bin = locateRedis(options.bin)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accel-redis-"))
  const sup = new Supervisor("redis", dir, 0, "SIGTERM")
  const logFile = path.join(dir, "redis.log")
  const timeoutMs = options.startTimeoutMs ?? 15_000

  const launch = async (port: number) => {
    sup.port = port
    const logStart = fileSize(logFile)
    const child = sup.spawn(bin, [
      "--bind", "127.0.0.1",
      "--port", String(port),
      "--dir", dir,
      "--save", "",
      "--appendonly", "no",
      "--daemonize", "no",
      ...(options.args ?? [])
    ], logFile, { cwd: dir })
    await sup.waitReady(child, logFile, logStart, timeoutMs, async () => {
      try {
        const info = await redisCommand(port, ["INFO", "server"], 500)
        return infoField(info, "process_id") === String(child.pid)
      } catch {
        return false
      }
    })
  }

  try {
    const port = await onSomePort(options.port, launch)
    const info = await redisCommand(port, ["INFO", "server"])
    const version = infoField(info, "redis_version") ?? "unknown"
    return withLifecycle(
      {
        kind: "redis",
        url: `redis://127.0.0.1:${port}`,
        port,
        version,
        dir
      },
      lifecycle("redis", sup, () => launch(port))
    )
  } catch (e) {
    await sup.stop()
    throw asServiceError("redis", "start", e)
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * Starts a private PostgreSQL server: `initdb` into a fresh temporary directory (owned by the
 * `postgres` OS user when we are root), `postgres` as a direct child on a free loopback port with
 * fast, non-durable settings (`fsync`, `synchronous_commit`, `full_page_writes` off), waits for
 * `pg_isready`, checks the answer comes from this data directory and creates the database.
 * Rejects with {@link ServiceError}.
 */
export const startPostgres = async (options: PostgresOptions = {}): Promise<PostgresServer> => {
  const bins = locatePostgres(options.binDir)
  const user = postgresUser()
  const database = options.database ?? "accelerator"
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new ServiceError({ service: "postgres", op: "prepare", message: `invalid database name ${database}` })
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "accel-pg-"))
  const sup = new Supervisor("postgres", dir, 0, "SIGINT")
  const dataDir = path.join(dir, "data")
  const logFile = path.join(dir, "postgres.log")
  const timeoutMs = options.startTimeoutMs ?? 30_000
  // A clean environment: no PGDATA/PGPORT/... from the developer's shell leaks into the servers.
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C", TZ: "UTC" }
  const asPostgres: SpawnOptions = user ? { uid: user.uid, gid: user.gid } : {}
  const psql = (port: number, db: string, commands: ReadonlyArray<string>) =>
    run(bins.psql, [
      "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
      "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", db,
      ...commands.flatMap((c) => ["-c", c])
    ], { env, timeoutMs: 10_000 })

  const launch = async (port: number) => {
    sup.port = port
    const logStart = fileSize(logFile)
    const settings: Record<string, string> = {
      listen_addresses: "127.0.0.1",
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      ...options.settings
    }
    const child = sup.spawn(bins.postgres, [
      "-D", dataDir,
      "-p", String(port),
      "-k", dir,
      ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])
    ], logFile, { ...asPostgres, cwd: dir, env })
    await sup.waitReady(child, logFile, logStart, timeoutMs, async () => {
      const r = await run(bins.pgIsReady, ["-q", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-t", "1"], {
        env,
        timeoutMs: 5_000
      })
      return r.code === 0
    })
    // pg_isready could be answered by another server that grabbed the port: check the data directory.
    const check = await psql(port, "postgres", ["SHOW data_directory"])
    if (check.code !== 0 || check.stdout.trim() !== dataDir) {
      throw new StartFailure(
        `port ${port} is answered by another server (${check.stdout.trim() || check.stderr.trim()})`,
        logTail(logFile, logStart)
      )
    }
  }

  try {
    if (user) fs.chownSync(dir, user.uid, user.gid)
    const init = await run(bins.initdb, [
      "-D", dataDir,
      "--auth=trust",
      "-U", "postgres",
      "--locale=C",
      "--encoding=UTF8",
      "--no-sync",
      "--no-instructions"
    ], { ...asPostgres, cwd: dir, env, timeoutMs: 60_000 })
    if (init.code !== 0) {
      throw new ServiceError({
        service: "postgres",
        op: "prepare",
        message: `initdb failed (exit ${init.code}): ${(init.stderr || init.stdout).trim()}`
      })
    }
    const port = await onSomePort(options.port, launch)
    const created = await psql(port, "postgres", [`CREATE DATABASE ${database}`, "SELECT version()"])
    if (created.code !== 0) {
      throw new ServiceError({
        service: "postgres",
        op: "prepare",
        message: `could not create database ${database}: ${created.stderr.trim()}`
      })
    }
    const versionString = created.stdout.trim().split("\n").pop() ?? ""
    const version = /^PostgreSQL (\S+)/.exec(versionString)?.[1] ?? "unknown"
    return withLifecycle(
      {
        kind: "postgres",
        url: `postgres://postgres@127.0.0.1:${port}/${database}`,
        port,
        version,
        versionString,
        database,
        dir
      },
      lifecycle("postgres", sup, () => launch(port))
    )
  } catch (e) {
    await sup.stop()
    throw asServiceError("postgres", "start", e)
  }
}

// ---------------------------------------------------------------------------------------------
// Effect wrappers for specs

const release = (server: ServerHandle) =>
  Effect.promise(() => server.stop()).pipe(Effect.interruptible, Effect.timeoutOption("30 seconds"))

/** A private `redis-server` for the lifetime of the scope (stopped and removed on release). */
export const redisServer = (options?: RedisOptions): Effect.Effect<RedisServer, ServiceError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => startRedis(options), catch: (e) => asServiceError("redis", "start", e) }),
    release
  )

/** A private PostgreSQL server for the lifetime of the scope (stopped and removed on release). */
export const postgresServer = (options?: PostgresOptions): Effect.Effect<PostgresServer, ServiceError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => startPostgres(options), catch: (e) => asServiceError("postgres", "start", e) }),
    release
  )
