/**
 * The import graph of the runtime (`src/` and `layers/`), read with the TypeScript compiler's
 * own parser, and the dependency rules it must keep:
 *
 * - no import circle, counting type-only imports, `export … from`, `import("…")` types and
 *   dynamic `import()` calls alike, the simulator included;
 * - `src/resilience`, `src/cache`, `src/concurrency` and `src/markdown` import nothing from
 *   `src/drupal` or `src/http`;
 * - `src/telemetry` imports nothing from `src/http` (it depends on the listener's contract in
 *   `src/listener`).
 *
 * The checker works on a map of path → source text, so its own spec can plant a circle or a
 * forbidden import in memory and see it reported.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

/** One import of one module by another, both as paths relative to the project root. */
export interface ImportEdge {
  readonly from: string
  readonly to: string
}

/** A broken rule: a forbidden import, or a circle (its files in import order). */
export type Violation =
  | { readonly _tag: "Forbidden"; readonly rule: string; readonly from: string; readonly to: string }
  | { readonly _tag: "Circle"; readonly files: ReadonlyArray<string> }

/** A dependency rule: no module under one of `from` may import a module under one of `to`. */
export interface Rule {
  readonly name: string
  readonly from: ReadonlyArray<string>
  readonly to: ReadonlyArray<string>
}

/** The rules of this project (see the module documentation). */
export const rules: ReadonlyArray<Rule> = [
  {
    name: "resilience, cache, concurrency and markdown know nothing of Drupal or HTTP",
    from: ["src/resilience/", "src/cache/", "src/concurrency/", "src/markdown/"],
    to: ["src/drupal/", "src/http/"]
  },
  {
    name: "telemetry depends on the listener's contract, not on src/http",
    from: ["src/telemetry/"],
    to: ["src/http/"]
  }
]

/** Every module specifier a source text names: static, type-only, re-exports, `import()` types and calls. */
export const specifiersOf = (fileName: string, text: string): ReadonlyArray<string> => {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const found: Array<string> = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text)
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression
      if (ts.isStringLiteral(expression)) found.push(expression.text)
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument
      if (ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal)) found.push(argument.literal.text)
    } else if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length > 0 && ts.isStringLiteralLike(node.arguments[0]!)
    ) {
      found.push((node.arguments[0] as ts.StringLiteralLike).text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/**
 * Resolves a relative specifier of `from` to one of `files` (`./x.js` → `x.ts`, `./dir` →
 * `dir/index.ts`); `undefined` for packages and for files outside the graph.
 */
const resolve = (from: string, specifier: string, files: ReadonlySet<string>): string | undefined => {
  if (!specifier.startsWith(".")) return undefined
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier))
  const stem = base.replace(/\.(js|mjs|cjs|ts|mts|cts)$/, "")
  for (const candidate of [`${stem}.ts`, `${stem}.mts`, `${stem}.cts`, base, `${base}/index.ts`]) {
    if (files.has(candidate)) return candidate
  }
  return undefined
}

/** The import edges between the given modules (path → source text). */
export const edgesOf = (sources: ReadonlyMap<string, string>): ReadonlyArray<ImportEdge> => {
  const files = new Set(sources.keys())
  const edges: Array<ImportEdge> = []
  for (const [from, text] of sources) {
    const targets = new Set<string>()
    for (const specifier of specifiersOf(from, text)) {
      const to = resolve(from, specifier, files)
      if (to !== undefined) targets.add(to)
    }
    for (const to of targets) edges.push({ from, to })
  }
  return edges
}

/** The circles of the graph: strongly connected components of more than one file, or a file importing itself. */
export const circlesOf = (files: Iterable<string>, edges: ReadonlyArray<ImportEdge>): ReadonlyArray<ReadonlyArray<string>> => {
  const next = new Map<string, Array<string>>()
  for (const file of files) next.set(file, [])
  for (const { from, to } of edges) next.get(from)?.push(to)
  // Tarjan's algorithm, iterative (no recursion depth limit on a large graph).
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: Array<string> = []
  const circles: Array<ReadonlyArray<string>> = []
  let counter = 0
  for (const root of next.keys()) {
    if (index.has(root)) continue
    const work: Array<{ readonly node: string; child: number }> = [{ node: root, child: 0 }]
    index.set(root, counter)
    low.set(root, counter++)
    stack.push(root)
    onStack.add(root)
    while (work.length > 0) {
      const frame = work[work.length - 1]!
      const children = next.get(frame.node) ?? []
      if (frame.child < children.length) {
        const child = children[frame.child++]!
        if (!index.has(child)) {
          index.set(child, counter)
          low.set(child, counter++)
          stack.push(child)
          onStack.add(child)
          work.push({ node: child, child: 0 })
        } else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!))
        }
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!))
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: Array<string> = []
        let member: string
        do {
          member = stack.pop()!
          onStack.delete(member)
          component.push(member)
        } while (member !== frame.node)
        const selfLoop = component.length === 1 && (next.get(frame.node) ?? []).includes(frame.node)
        if (component.length > 1 || selfLoop) circles.push(component.sort())
      }
    }
  }
  return circles
}

/** Every broken rule of the given modules (path → source text, paths relative to the root, `/`-separated). */
export const check = (sources: ReadonlyMap<string, string>, ruleSet: ReadonlyArray<Rule> = rules): ReadonlyArray<Violation> => {
  const edges = edgesOf(sources)
  const violations: Array<Violation> = []
  for (const { from, to } of edges) {
    for (const rule of ruleSet) {
      if (rule.from.some((p) => from.startsWith(p)) && rule.to.some((p) => to.startsWith(p))) {
        violations.push({ _tag: "Forbidden", rule: rule.name, from, to })
      }
    }
  }
  for (const files of circlesOf(sources.keys(), edges)) violations.push({ _tag: "Circle", files })
  return violations
}

/** The `.ts` files under `dirs` of `root`, read: path (relative to `root`) → text. */
export const readSources = (root: string, dirs: ReadonlyArray<string>): ReadonlyMap<string, string> => {
  const sources = new Map<string, string>()
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name)
      if (entry.isDirectory()) walk(relative)
      else if (/\.(ts|mts|cts)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        sources.set(relative, fs.readFileSync(path.join(root, relative), "utf8"))
      }
    }
  }
  for (const dir of dirs) walk(dir)
  return sources
}

/** One line per violation, for a failure message. */
export const describe = (violation: Violation): string =>
  violation._tag === "Circle"
    ? `import circle: ${violation.files.join(" <-> ")}`
    : `${violation.from} imports ${violation.to} (${violation.rule})`
