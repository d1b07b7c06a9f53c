/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for specs. It rejects what
 * Prometheus' own parser rejects and a bit more that the house style requires:
 *
 * - every line is `# HELP name text`, `# TYPE name type`, another `#` comment, blank, or a sample
 *   `name{label="value",...} value [timestamp]` with the format's name, label and escape rules;
 * - every family has exactly one HELP and one TYPE, both before its first sample; a family's
 *   samples are contiguous (no family appears twice);
 * - sample names match their family: `name` for counter/gauge/untyped, `name_bucket` (with `le`),
 *   `name_sum`, `name_count` for histograms, `name` (with `quantile`), `_sum`, `_count` for
 *   summaries; no series appears twice;
 * - histograms: per series, `le` values strictly increasing and ending at `+Inf`, bucket counts
 *   non-decreasing, `+Inf` equal to `_count`, `_sum` and `_count` present.
 *
 * Throws an `Error` naming the line on the first violation.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly help: string
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped"
  readonly samples: ReadonlyArray<Sample>
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

const parseValue = (text: string, where: string): number => {
  if (text === "NaN") return NaN
  if (text === "+Inf" || text === "Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`)
  return Number(text)
}

const unescapeHelp = (text: string, where: string): string =>
  text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\"
    if (c === "n") return "\n"
    throw new Error(`${where}: bad escape in HELP`)
  })

/** Parses `{a="x",b="y"}` starting at `i` (at `{`); returns labels and the index after `}`. */
const parseLabels = (line: string, start: number, where: string): { labels: Record<string, string>; end: number } => {
  const labels: Record<string, string> = {}
  let i = start + 1
  for (;;) {
    if (line[i] === "}") return { labels, end: i + 1 }
    const eq = line.indexOf("=", i)
    if (eq === -1) throw new Error(`${where}: label without '='`)
    const name = line.slice(i, eq)
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`)
    if (name in labels) throw new Error(`${where}: duplicate label ${name}`)
    if (line[eq + 1] !== "\"") throw new Error(`${where}: label value not quoted`)
    let j = eq + 2
    let value = ""
    for (;;) {
      const c = line[j]
      if (c === undefined) throw new Error(`${where}: unterminated label value`)
      if (c === "\"") break
      if (c === "\\") {
        const n = line[j + 1]
        if (n === "\\") value += "\\"
        else if (n === "\"") value += "\""
        else if (n === "n") value += "\n"
        else throw new Error(`${where}: bad escape in label value`)
        j += 2
        continue
      }
      value += c
      j++
    }
    labels[name] = value
    i = j + 1
    if (line[i] === ",") {
      i++
      continue
    }
    if (line[i] !== "}") throw new Error(`${where}: expected ',' or '}' after label`)
  }
}

const seriesKey = (name: string, labels: Record<string, string>, drop?: string) =>
  name + "|" + Object.keys(labels).filter((k) => k !== drop).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",")

/** Parses and validates an exposition; returns its families in order. */
export const parseStrict = (text: string): ReadonlyArray<Family> => {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline")
  const lines = text.split("\n")
  lines.pop()
  const families: Array<{ name: string; help?: string; type?: Family["type"]; samples: Array<Sample> }> = []
  const byName = new Map<string, (typeof families)[number]>()
  const closed = new Set<string>()
  let current: (typeof families)[number] | undefined
  const seen = new Set<string>()

  const familyFor = (name: string, where: string) => {
    let f = byName.get(name)
    if (f === undefined) {
      if (current !== undefined) closed.add(current.name)
      f = { name, samples: [] }
      byName.set(name, f)
      families.push(f)
      current = f
    } else if (f !== current) {
      throw new Error(`${where}: family ${name} is not contiguous`)
    }
    return f
  }

  lines.forEach((line, index) => {
    const where = `line ${index + 1}`
    if (line.trim() === "") return
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line)
      if (m === null) return // any other comment
      const [, kind, name, rest = ""] = m as unknown as [string, "HELP" | "TYPE", string, string | undefined]
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`)
      if (closed.has(name)) throw new Error(`${where}: family ${name} is not contiguous`)
      const f = familyFor(name, where)
      if (f.samples.length > 0) throw new Error(`${where}: ${kind} of ${name} after its samples`)
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`)
        f.help = unescapeHelp(rest, where)
      } else {
        if (f.type !== undefined) throw new Error(`${where}: second TYPE for ${name}`)
        if (!TYPES.has(rest)) throw new Error(`${where}: bad TYPE ${JSON.stringify(rest)}`)
        f.type = rest as Family["type"]
      }
      return
    }
    const nameEnd = line.search(/[{ ]/)
    if (nameEnd <= 0) throw new Error(`${where}: no sample name`)
    const name = line.slice(0, nameEnd)
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad sample name ${name}`)
    let labels: Record<string, string> = {}
    let i = nameEnd
    if (line[i] === "{") {
      const parsed = parseLabels(line, i, where)
      labels = parsed.labels
      i = parsed.end
    }
    if (line[i] !== " ") throw new Error(`${where}: expected one space before the value`)
    const parts = line.slice(i + 1).split(" ")
    if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === "")) throw new Error(`${where}: bad value/timestamp`)
    const value = parseValue(parts[0]!, where)
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) throw new Error(`${where}: bad timestamp`)

    // Find the family this sample belongs to: the current one, by suffix rules.
    const f = current
    if (f === undefined || f.type === undefined || f.help === undefined) {
      throw new Error(`${where}: sample ${name} without a preceding HELP and TYPE`)
    }
    const base = f.name
    let ok = false
    if (f.type === "histogram") {
      if (name === `${base}_bucket`) {
        if (!("le" in labels)) throw new Error(`${where}: histogram bucket without le`)
        ok = true
      } else ok = name === `${base}_sum` || name === `${base}_count`
      if (ok && name !== `${base}_bucket` && "le" in labels) throw new Error(`${where}: le on ${name}`)
    } else if (f.type === "summary") {
      ok = name === base || name === `${base}_sum` || name === `${base}_count`
      if (name === base && !("quantile" in labels)) throw new Error(`${where}: summary sample without quantile`)
    } else {
      ok = name === base
    }
    if (!ok) throw new Error(`${where}: sample ${name} does not belong to family ${base} (${f.type})`)
    const key = seriesKey(name, labels)
    if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`)
    seen.add(key)
    f.samples.push({ name, labels, value })
  })

  for (const f of families) {
    if (f.help === undefined) throw new Error(`family ${f.name} has no HELP`)
    if (f.type === undefined) throw new Error(`family ${f.name} has no TYPE`)
    if (f.type === "histogram") checkHistogram(f.name, f.samples)
  }
  return families as ReadonlyArray<Family>
}

const checkHistogram = (name: string, samples: ReadonlyArray<Sample>) => {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>()
  const entry = (labels: Record<string, string>) => {
    const key = seriesKey("", labels, "le")
    let s = series.get(key)
    if (s === undefined) {
      s = { buckets: [] }
      series.set(key, s)
    }
    return s
  }
  for (const sample of samples) {
    const s = entry(sample.labels as Record<string, string>)
    if (sample.name.endsWith("_bucket")) s.buckets.push([parseValue(sample.labels["le"]!, `${name} le`), sample.value])
    else if (sample.name.endsWith("_sum")) s.sum = sample.value
    else s.count = sample.value
  }
  for (const [key, s] of series) {
    if (s.sum === undefined || s.count === undefined) throw new Error(`histogram ${name}{${key}} lacks _sum or _count`)
    if (s.buckets.length === 0) throw new Error(`histogram ${name}{${key}} has no buckets`)
    for (let i = 1; i < s.buckets.length; i++) {
      if (!(s.buckets[i]![0] > s.buckets[i - 1]![0])) throw new Error(`histogram ${name}{${key}}: le not increasing`)
      if (s.buckets[i]![1] < s.buckets[i - 1]![1]) throw new Error(`histogram ${name}{${key}}: bucket counts decrease`)
    }
    const last = s.buckets[s.buckets.length - 1]!
    if (last[0] !== Infinity) throw new Error(`histogram ${name}{${key}}: last bucket is not +Inf`)
    if (last[1] !== s.count) throw new Error(`histogram ${name}{${key}}: +Inf bucket ${last[1]} != _count ${s.count}`)
  }
}

/** The value of one sample, found by name and an exact label set; throws when absent. */
export const valueOf = (families: ReadonlyArray<Family>, name: string, labels: Record<string, string> = {}): number => {
  const want = seriesKey(name, labels)
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name === name && seriesKey(s.name, s.labels as Record<string, string>) === want) return s.value
    }
  }
  throw new Error(`no sample ${want}`)
}

/** Sum of the samples called `name` whose labels include `match`. */
export const sumOf = (families: ReadonlyArray<Family>, name: string, match: Record<string, string> = {}): number => {
  let total = 0
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name !== name) continue
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value
    }
  }
  return total
}

/** Number of samples (lines with a value) in the exposition. */
export const sampleCount = (families: ReadonlyArray<Family>): number =>
  families.reduce((n, f) => n + f.samples.length, 0)

/** Runs `promtool check metrics` on `text`; resolves with its exit code and combined output. */
export const promtoolCheck = (text: string): Promise<{ readonly code: number | null; readonly output: string }> =>
  import("node:child_process").then(({ spawn }) =>
    new Promise((resolve, reject) => {
      const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] })
      let output = ""
      child.stdout.setEncoding("utf8").on("data", (c: string) => (output += c))
      child.stderr.setEncoding("utf8").on("data", (c: string) => (output += c))
      child.on("error", reject)
      child.on("close", (code) => resolve({ code, output }))
      child.stdin.end(text)
    })
  )
