// Node 20 lacks `fs.globSync`, which the conformance CLI imports (it uses it only for its tier
// report, not for server scenarios). This loader hook gives its bundle a small stand-in.
import { register } from "node:module"

register("data:text/javascript," + encodeURIComponent(`
export async function load(url, context, next) {
  const result = await next(url, context)
  if (!url.includes("@modelcontextprotocol/conformance/dist/index.js")) return result
  const source = String(result.source).replace("globSync as o,", "")
  const shim = "const o = () => { throw new Error('globSync is not available on this Node version') };"
  // After the first line (the shebang), so the line numbers of the bundle stay as they were.
  const cut = source.indexOf("\\n")
  return { ...result, source: source.slice(0, cut + 1) + shim + source.slice(cut + 1), shortCircuit: true }
}
`))
