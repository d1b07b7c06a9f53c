/**
 * Shared pieces of the issue-12 bench programs: the duration knob (`--seconds`, else the
 * `BENCH_SECONDS` environment variable, so `BENCH_SECONDS=3 npm run bench` is a smoke run), the
 * latency-percentile chart, the Markdown header every summary starts with, and progress output.
 */
import { argNumber, barChart, type environment } from "./report.js"

/** Seconds of one measured run: `--seconds N`, else `BENCH_SECONDS`, else `fallback`. */
export const benchSeconds = (fallback: number): number => {
  const fromArg = argNumber("seconds", Number.NaN)
  if (Number.isFinite(fromArg) && fromArg > 0) return fromArg
  const fromEnv = Number(process.env.BENCH_SECONDS)
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : fallback
}

export interface LatencyRow {
  readonly label: string
  readonly p50_ms: number | null
  readonly p90_ms: number | null
  readonly p99_ms: number | null
  readonly max_ms: number | null
}

/** Grouped bars (log scale) of p50 / p90 / p99 / max per scenario. */
export const percentileChart = (title: string, rows: ReadonlyArray<LatencyRow>) =>
  barChart({
    title,
    groups: rows.map((r) => r.label),
    series: [
      { name: "p50", color: "#9ecae1", values: rows.map((r) => r.p50_ms) },
      { name: "p90", color: "#4292c6", values: rows.map((r) => r.p90_ms) },
      { name: "p99", color: "#08519c", values: rows.map((r) => r.p99_ms) },
      { name: "max", color: "#fd8d3c", values: rows.map((r) => r.max_ms) }
    ]
  })

/** The first lines of a summary: title, command, date, machine, versions, whether it was shared. */
export const markdownHeader = (title: string, env: ReturnType<typeof environment>, extra = "") =>
  [
    `# ${title}`,
    "",
    `\`${env.command}\` on ${env.date} (commit ${env.commit}); ${env.machine.cpus} × ${env.machine.cpu}, ${env.machine.memory_gb} GB, ` +
    Object.entries(env.versions).map(([k, v]) => `${k} ${v}`).join(", ") + ".",
    `Machine: ${env.machine.shared} (load average ${env.machine.load_average_at_start.join(", ")} at start).`,
    ...(extra === "" ? [] : ["", extra]),
    ""
  ].join("\n")

/** Progress on the terminal: a line now, then one every `everyMs` until the returned stop is called. */
export const progress = (label: string, seconds: number, everyMs = 5_000) => {
  const started = Date.now()
  console.error(`[bench] ${label}: ${seconds} s`)
  const timer = setInterval(() => console.error(`[bench]   ${label}: ${Math.round((Date.now() - started) / 1000)} / ${seconds} s`), everyMs)
  return () => clearInterval(timer)
}

export const fmt = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toLocaleString("en-US", { maximumFractionDigits: digits })
