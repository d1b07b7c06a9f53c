/** What every bench result records (machine, versions, command) and the writers (JSON, Markdown, SVG). */
import { execSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { root } from "./processes.js"

const pkg = (name: string): string => {
  try {
    return JSON.parse(readFileSync(`${root}node_modules/${name}/package.json`, "utf8")).version as string
  } catch {
    return "unknown"
  }
}

/** Busy and total jiffies of all CPUs (/proc/stat), or undefined off Linux. */
const cpuTimes = (): { busy: number; total: number } | undefined => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    const total = fields.reduce((a, b) => a + b, 0)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
    return { busy: total - idle, total }
  } catch {
    return undefined
  }
}

/**
 * Whether other work shared the machine when the program started: the share of all CPUs busy
 * over one second, measured before the program starts anything (the load average trails by
 * minutes, so right after another program of the suite it is still high on a quiet machine).
 */
const sharedVerdict = (load1: number): string => {
  const a = cpuTimes()
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000)
  const b = cpuTimes()
  if (a === undefined || b === undefined || b.total === a.total) {
    return load1 > os.cpus().length * 0.75
      ? "yes: the load average was above the core count at start; absolute figures are pessimistic"
      : "no other heavy work detected at start"
  }
  const busy = Math.round(((b.busy - a.busy) / (b.total - a.total)) * 100)
  return busy > 30
    ? `yes: ${busy} % of the CPUs were busy with other work in the second before the start; absolute figures are pessimistic`
    : `no: ${busy} % of the CPUs busy in the second before the start (the load average, which trails by minutes, may still count the preceding program)`
}

export const environment = (extra: Record<string, string> = {}) => {
  let commit = "unknown"
  try {
    commit = execSync("git rev-parse --short HEAD", { cwd: root, encoding: "utf8" }).trim()
  } catch {
    // not a checkout
  }
  const load = os.loadavg()
  return {
    date: new Date().toISOString(),
    command: ["npx", "tsx", ...process.argv.slice(1).map((a) => a.replace(root, ""))].join(" "),
    commit,
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "unknown",
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
      load_average_at_start: load.map((x) => Math.round(x * 100) / 100),
      shared: sharedVerdict(load[0]!)
    },
    versions: {
      node: process.version,
      effect: pkg("effect"),
      "@effect/platform": pkg("@effect/platform"),
      "@effect/platform-node": pkg("@effect/platform-node"),
      undici: pkg("undici"),
      ioredis: pkg("ioredis"),
      pg: pkg("pg"),
      ...extra
    }
  }
}

export const writeResult = (name: string, record: unknown, markdown: string, svg?: string) => {
  const base = `${root}bench/results/${name}`
  writeFileSync(`${base}.json`, JSON.stringify(record, null, 2) + "\n")
  writeFileSync(`${base}.md`, markdown)
  if (svg !== undefined) writeFileSync(`${base}.svg`, svg)
  console.error(`[bench] wrote bench/results/${name}.json, ${name}.md${svg === undefined ? "" : `, ${name}.svg`}`)
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/**
 * A grouped bar chart drawn by hand: per group (scenario), one bar per series (phase), on a log
 * scale of milliseconds. Missing values are left out.
 */
export const barChart = (options: {
  readonly title: string
  readonly groups: ReadonlyArray<string>
  readonly series: ReadonlyArray<{ readonly name: string; readonly color: string; readonly values: ReadonlyArray<number | null> }>
  readonly unit?: string
}): string => {
  const width = Math.max(640, 90 + options.groups.length * (options.series.length * 16 + 24))
  const height = 360
  const top = 40
  const bottom = 90
  const left = 60
  const plotH = height - top - bottom
  const all = options.series.flatMap((s) => s.values.filter((v): v is number => v !== null && v > 0))
  const max = Math.max(10, ...all)
  const decades = Math.ceil(Math.log10(max))
  const y = (v: number) => top + plotH - (Math.log10(Math.max(1, v)) / decades) * plotH
  const out: Array<string> = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="100%" height="100%" fill="white"/>`)
  out.push(`<text x="${left}" y="20" font-size="14">${esc(options.title)}</text>`)
  for (let d = 0; d <= decades; d++) {
    const v = 10 ** d
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v} ${options.unit ?? "ms"}</text>`)
  }
  const groupW = (width - left - 10) / options.groups.length
  const barW = Math.min(16, (groupW - 12) / options.series.length)
  options.groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * options.series.length) / 2
    options.series.forEach((s, si) => {
      const v = s.values[gi]
      if (v === null || v === undefined) return
      const yy = y(v)
      out.push(`<rect x="${x0 + si * barW}" y="${yy}" width="${barW - 1}" height="${top + plotH - yy}" fill="${s.color}"><title>${esc(`${g} ${s.name}: ${v} ms`)}</title></rect>`)
    })
    const cx = left + gi * groupW + groupW / 2
    out.push(`<text transform="translate(${cx},${top + plotH + 10}) rotate(35)" text-anchor="start">${esc(g)}</text>`)
  })
  options.series.forEach((s, si) => {
    const lx = left + si * 110
    out.push(`<rect x="${lx}" y="${height - 18}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${height - 9}">${esc(s.name)}</text>`)
  })
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | null>>) =>
  [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map((c) => (c === null ? "—" : String(c))).join(" | ")} |`)
  ].join("\n")

export const argNumber = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
export const argString = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? String(process.argv[i + 1]) : fallback
}
