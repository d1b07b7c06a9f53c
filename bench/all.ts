/**
 * `npm run bench`: every bench program, one after another, each in its own process (each starts
 * and stops what it needs), with its own output on the terminal. A program exits 1 when it missed
 * a target and 2 when it failed to run; the suite goes on either way and ends with a table.
 *
 *   npm run bench -- [--only mix,hit-path] [--skip chaos]
 *   BENCH_SECONDS=3 npm run bench     # a smoke run: the issue-12 programs measure 3 s per run
 *
 * Programs whose file is absent are skipped (the list names every program of the project).
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { root } from "./harness/processes.js"
import { argString } from "./harness/report.js"

const PROGRAMS = ["mix", "hit-path", "miss-path", "peers", "stampede", "streaming", "profile", "batching", "instances", "chaos", "mcp", "compression"]
const only = argString("only", "").split(",").filter((s) => s !== "")
const skip = argString("skip", "").split(",").filter((s) => s !== "")

const run = (name: string) =>
  new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", `bench/${name}.ts`], { cwd: root, stdio: "inherit" })
    child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 2 : 130)))
  })

const main = async () => {
  const rows: Array<{ name: string; code: number; seconds: number }> = []
  for (const name of PROGRAMS) {
    if ((only.length > 0 && !only.includes(name)) || skip.includes(name)) continue
    if (!existsSync(`${root}bench/${name}.ts`)) continue
    console.error(`\n[bench] ===== ${name} (${new Date().toISOString()})`)
    const started = Date.now()
    const code = await run(name)
    rows.push({ name, code, seconds: Math.round((Date.now() - started) / 1000) })
    console.error(`[bench] ===== ${name}: exit ${code} after ${rows[rows.length - 1]!.seconds} s`)
  }
  console.log("\n| program | result | seconds | output |\n| --- | --- | --- | --- |")
  for (const r of rows) {
    const result = r.code === 0 ? "targets met" : r.code === 1 ? "ran; a target missed" : `failed (exit ${r.code})`
    console.log(`| ${r.name} | ${result} | ${r.seconds} | bench/results/${r.name}.md |`)
  }
  process.exit(rows.some((r) => r.code > 1) ? 2 : rows.some((r) => r.code === 1) ? 1 : 0)
}

void main()
