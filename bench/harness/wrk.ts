/**
 * `wrk` (Debian package) as the load generator of ratio benchmarks: one run against one URL, with
 * a Lua script that sends a fixed list of requests (path and optional `Authorization`, one per
 * line, tab-separated) in a cycle, each thread starting at its own offset, and counts statuses
 * and `X-Cache` values. The result is parsed from the JSON the script prints in `done()`.
 *
 * `requireTools` installs missing Debian packages with apt-get when run as root (as
 * `test/support/prepare.sh` does for the test suite), else says what to install.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { logDir } from "./processes.js"

const have = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0 || fs.existsSync(`/usr/sbin/${bin}`)

/** Makes sure the Debian packages giving these binaries are installed ({binary: package}). */
export const requireTools = (tools: Record<string, string>) => {
  const missing = Object.entries(tools).filter(([bin]) => !have(bin)).map(([, pkg]) => pkg)
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) throw new Error(`missing: ${missing.join(", ")}; install them: sudo apt-get install -y ${missing.join(" ")}`)
  console.error(`[bench] installing ${missing.join(", ")} with apt-get`)
  // Packages' own daemons (varnish) must not start on install: the bench starts its own.
  const policy = "/usr/sbin/policy-rc.d"
  const ownPolicy = !fs.existsSync(policy)
  if (ownPolicy) fs.writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 })
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" })
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    })
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true })
  }
}

export const wrkVersion = (): string => {
  const out = spawnSync("wrk", ["-v"], { encoding: "utf8" })
  return /wrk (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? "unknown"
}

const SCRIPT = `
local reqs, n, i = {}, 0, 0
statuses = {}
caches = {}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
end
function init(args)
  for line in io.lines(args[1]) do
    local p, auth = line:match("^([^\\t]*)\\t?(.*)$")
    local headers = {}
    if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
    n = n + 1
    reqs[n] = wrk.format("GET", p, headers)
  end
  local nthreads = tonumber(args[2]) or 1
  i = math.floor((tid or 0) * n / nthreads)
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  local c = headers["x-cache"] or headers["X-Cache"] or "none"
  caches[c] = (caches[c] or 0) + 1
end
local function obj(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format("%q:%d", k, v) end
  return "{" .. table.concat(parts, ",") .. "}"
end
function done(summary, latency, requests)
  local st, ca = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
    for k, v in pairs(t:get("caches")) do ca[k] = (ca[k] or 0) + v end
  end
  local e = summary.errors
  io.write(string.format(
    "WRKJSON{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"errors\\":{\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d},\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d,\\"mean_us\\":%d,\\"statuses\\":%s,\\"cache\\":%s}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, obj(st), obj(ca)))
end
`

export interface WrkResult {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  readonly p50_ms: number
  readonly p90_ms: number
  readonly p99_ms: number
  readonly max_ms: number
  readonly mean_ms: number
  readonly bytes: number
  readonly statuses: Record<string, number>
  readonly cache: Record<string, number>
  /** Socket errors (connect/read/write) and timeouts, as wrk counts them; non-2xx/3xx are in `statuses`. */
  readonly errors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number }
}

let scriptFile: string | undefined
let listCounter = 0

/** Writes a request list (path, optional Authorization) for {@link runWrk}; returns its file. */
export const writeRequestList = (requests: ReadonlyArray<{ readonly path: string; readonly authorization?: string | undefined }>): string => {
  const file = path.join(logDir, `requests-${listCounter++}.tsv`)
  fs.writeFileSync(file, requests.map((r) => `${r.path}\t${r.authorization ?? ""}`).join("\n") + "\n")
  return file
}

const round1 = (x: number) => Math.round(x * 10) / 10

/** One wrk run: `connections` over `threads` threads for `seconds`, cycling through the request list. */
export const runWrk = async (options: {
  readonly url: string
  readonly requestList: string
  readonly connections: number
  readonly seconds: number
  readonly threads?: number
  readonly timeoutSeconds?: number
}): Promise<WrkResult> => {
  if (scriptFile === undefined) {
    scriptFile = path.join(logDir, "list.lua")
    fs.writeFileSync(scriptFile, SCRIPT)
  }
  const threads = options.threads ?? 2
  const args = [
    "-t", String(threads), "-c", String(options.connections), "-d", `${options.seconds}s`,
    "--timeout", `${options.timeoutSeconds ?? 30}s`, "-s", scriptFile, options.url, "--", options.requestList, String(threads)
  ]
  const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  let err = ""
  child.stdout.on("data", (d) => (out += d))
  child.stderr.on("data", (d) => (err += d))
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  const line = out.split("\n").find((l) => l.startsWith("WRKJSON"))
  if (line === undefined) throw new Error(`wrk failed (exit ${code}): ${err}\n${out}`)
  const j = JSON.parse(line.slice("WRKJSON".length))
  const seconds = j.duration_us / 1e6
  return {
    requests: j.requests,
    seconds: round1(seconds),
    rps: Math.round(j.requests / seconds),
    p50_ms: round1(j.p50_us / 1000),
    p90_ms: round1(j.p90_us / 1000),
    p99_ms: round1(j.p99_us / 1000),
    max_ms: round1(j.max_us / 1000),
    mean_ms: round1(j.mean_us / 1000),
    bytes: j.bytes,
    statuses: j.statuses,
    cache: j.cache,
    errors: { connect: j.errors.connect, read: j.errors.read, write: j.errors.write, timeout: j.errors.timeout }
  }
}
