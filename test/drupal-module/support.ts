/**
 * Support for the specs of the Drupal module in `drupal/`: its files, the PHP command line
 * (Debian `php-cli`, installed by test/support/prepare.sh), and a strict parser for the subset
 * of YAML the module's files use (the project has no YAML dependency).
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

/** The module's directory. */
export const MODULE_DIR = fileURLToPath(new URL("../../drupal/", import.meta.url))

/** Every file under the module, as paths relative to it, sorted. */
export const moduleFiles = (): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else out.push(relative(MODULE_DIR, path))
    }
  }
  walk(MODULE_DIR)
  return out.sort()
}

/** A module file's text. */
export const moduleFile = (path: string): string => readFileSync(join(MODULE_DIR, path), "utf8")

/** What a `php` run printed and how it ended. */
export interface PhpRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `php` with `args` (and `stdin`), bounded by 30 s. Never fails: the exit code is in the result. */
export const php = (args: ReadonlyArray<string>, stdin = ""): Effect.Effect<PhpRun> =>
  Effect.async<PhpRun>((resume, signal) => {
    const child = execFile("php", [...args], { timeout: 30_000, maxBuffer: 4 * 1024 * 1024, signal }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resume(Effect.succeed({ code, stdout, stderr: stderr + (error !== null && typeof error.code !== "number" ? String(error) : "") }))
    })
    child.stdin?.end(stdin)
  })

// ---------------------------------------------------------------------------------------------
// A strict YAML subset: block mappings and sequences by indentation (spaces only), sequences of
// mappings (`- key: value`), flow sequences and mappings of scalars (`[a, b]`, `{ a: b }`),
// quoted and plain scalars, booleans, null, numbers, full-line and trailing ` #` comments.
// Anything else (anchors, tags, block scalars, multi-line flows, tabs) is an error, so a file the
// parser accepts is one Drupal's YAML parser reads the same way.
// ---------------------------------------------------------------------------------------------

/** A YAML value. */
export type Yaml = string | number | boolean | null | ReadonlyArray<Yaml> | { readonly [key: string]: Yaml }

interface Line {
  readonly n: number
  readonly indent: number
  readonly text: string
}

/** Cuts a trailing ` #` comment that is outside quotes. */
const stripComment = (text: string): string => {
  let quote: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
    } else if (c === "'" || c === "\"") {
      quote = c
    } else if (c === "#" && (i === 0 || text[i - 1] === " ")) {
      return text.slice(0, i).trimEnd()
    }
  }
  return text
}

/** The position of the `:` that ends a mapping key (followed by a space or the end), or -1. */
const keyEnd = (text: string): number => {
  if (text.startsWith("'") || text.startsWith("\"")) {
    const close = text.indexOf(text[0]!, 1)
    return close > 0 && text[close + 1] === ":" && (close + 2 === text.length || text[close + 2] === " ") ? close + 1 : -1
  }
  const match = /:( |$)/.exec(text)
  return match === null ? -1 : match.index
}

const scalar = (raw: string, where: string): Yaml => {
  const text = raw.trim()
  if (text === "" || text === "~" || text === "null") return null
  if (text === "true") return true
  if (text === "false") return false
  if (/^-?\d+$/.test(text)) return Number(text)
  if (/^-?\d+\.\d+$/.test(text)) return Number(text)
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new Error(`${where}: unterminated single-quoted scalar`)
    const inner = text.slice(1, -1)
    if (/'(?!')/.test(inner.replace(/''/g, ""))) throw new Error(`${where}: stray quote in ${text}`)
    return inner.replace(/''/g, "'")
  }
  if (text.startsWith("\"")) {
    if (!text.endsWith("\"") || text.length < 2) throw new Error(`${where}: unterminated double-quoted scalar`)
    return JSON.parse(text) as string
  }
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) throw new Error(`${where}: flow sequences must close on their line`)
    const inner = text.slice(1, -1).trim()
    return inner === "" ? [] : splitFlow(inner).map((item) => scalar(item, where))
  }
  if (text.startsWith("{")) {
    if (!text.endsWith("}")) throw new Error(`${where}: flow mappings must close on their line`)
    const inner = text.slice(1, -1).trim()
    const out: Record<string, Yaml> = {}
    if (inner === "") return out
    for (const pair of splitFlow(inner)) {
      const at = keyEnd(pair)
      if (at < 0) throw new Error(`${where}: flow mapping entry without key: ${pair}`)
      out[String(scalar(pair.slice(0, at), where))] = scalar(pair.slice(at + 1), where)
    }
    return out
  }
  if (/^[&*!|>%@`]/.test(text)) throw new Error(`${where}: unsupported YAML: ${text}`)
  if (/: |\s#/.test(text)) throw new Error(`${where}: ambiguous plain scalar: ${text}`)
  return text
}

/** Splits a one-line flow collection's inside on top-level commas (no nesting supported). */
const splitFlow = (inner: string): Array<string> => {
  const parts: Array<string> = []
  let quote: string | undefined
  let start = 0
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
    } else if (c === "'" || c === "\"") quote = c
    else if (c === "[" || c === "{") throw new Error(`nested flow collections are not supported: ${inner}`)
    else if (c === ",") {
      parts.push(inner.slice(start, i).trim())
      start = i + 1
    }
  }
  parts.push(inner.slice(start).trim())
  return parts
}

/** Parses `source` (the subset above); throws with the line number on anything else. */
export const parseYaml = (source: string, name = "yaml"): Yaml => {
  const lines: Array<Line> = []
  source.split("\n").forEach((raw, i) => {
    if (/^\s*\t/.test(raw)) throw new Error(`${name}:${i + 1}: tab in indentation`)
    const text = stripComment(raw).trimEnd()
    if (text.trim() === "" || text.trim() === "---") return
    lines.push({ n: i + 1, indent: text.length - text.trimStart().length, text: text.trimStart() })
  })
  let pos = 0
  const where = (line: Line) => `${name}:${line.n}`

  const block = (indent: number): Yaml => {
    const first = lines[pos]!
    if (first.indent !== indent) throw new Error(`${where(first)}: expected indentation ${indent}`)
    return first.text === "-" || first.text.startsWith("- ") ? sequence(indent) : mapping(indent, undefined)
  }

  /** A value after `key:` or `- ` with nothing else on the line: a nested block, or null. */
  const nested = (parentIndent: number): Yaml => {
    const next = lines[pos]
    return next !== undefined && next.indent > parentIndent ? block(next.indent) : null
  }

  const mapping = (indent: number, firstText: string | undefined): Yaml => {
    const out: Record<string, Yaml> = {}
    let text = firstText
    for (;;) {
      const line: Line | undefined = text === undefined ? lines[pos] : undefined
      if (text === undefined) {
        if (line === undefined || line.indent < indent) break
        if (line.indent > indent) throw new Error(`${where(line)}: unexpected indentation`)
        if (line.text.startsWith("- ")) throw new Error(`${where(line)}: sequence item inside a mapping`)
        text = line.text
        pos++
      }
      const at = keyEnd(text)
      const here = lines[pos - 1]!
      if (at < 0) throw new Error(`${where(here)}: expected "key: value", got ${text}`)
      const key = String(scalar(text.slice(0, at), where(here)))
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new Error(`${where(here)}: duplicate key ${key}`)
      const rest = text.slice(at + 1).trim()
      out[key] = rest === "" ? nested(indent) : scalar(rest, where(here))
      text = undefined
    }
    return out
  }

  const sequence = (indent: number): Yaml => {
    const out: Array<Yaml> = []
    for (;;) {
      const line = lines[pos]
      if (line === undefined || line.indent < indent) break
      if (line.indent > indent || !(line.text === "-" || line.text.startsWith("- "))) {
        throw new Error(`${where(line)}: expected a sequence item`)
      }
      pos++
      const rest = line.text.slice(1).trim()
      if (rest === "") out.push(nested(indent))
      else if (keyEnd(rest) >= 0 && !rest.startsWith("{")) out.push(mapping(indent + 2, rest))
      else out.push(scalar(rest, where(line)))
    }
    return out
  }

  if (lines.length === 0) return null
  const value = block(lines[0]!.indent)
  if (pos < lines.length) throw new Error(`${where(lines[pos]!)}: unexpected content`)
  return value
}
