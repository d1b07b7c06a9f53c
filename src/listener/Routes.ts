/**
 * The gateway's routes, in one table: the API definition (`http/Api.ts`, `http/AdminApi.ts`)
 * takes its paths from it, the metrics take their `route` label from it (`routeOf`), and the
 * memory-hit path recognises its routes with it (`matchRoute`). A path segment `:name` is a
 * parameter; the `/metrics` and `/status` pages are answered by the listener's fast path.
 *
 * @since 0.1.0
 */

/** `route` label values of the HTTP metrics, fixed; a route not labelled on its own is `other`. */
export const routeLabels = [
  "health",
  "health_live",
  "search",
  "content",
  "methods",
  "tools",
  "rpc",
  "mcp",
  "metrics",
  "status",
  "other"
] as const
/** A `route` label value. */
export type RouteLabel = typeof routeLabels[number]

/** Every route: its path pattern and its metrics label. */
export const routes = {
  health: { path: "/health", label: "health" },
  healthLive: { path: "/health/live", label: "health_live" },
  search: { path: "/search", label: "search" },
  content: { path: "/content/:id", label: "content" },
  markdown: { path: "/content/:id/markdown", label: "content" },
  methods: { path: "/methods", label: "methods" },
  tools: { path: "/tools", label: "tools" },
  rpc: { path: "/rpc/:method", label: "rpc" },
  mcp: { path: "/mcp", label: "mcp" },
  invalidate: { path: "/admin/invalidate", label: "other" },
  drupalWebhook: { path: "/webhooks/drupal", label: "other" },
  openapi: { path: "/openapi.json", label: "other" },
  metrics: { path: "/metrics", label: "metrics" },
  status: { path: "/status", label: "status" },
  statusJson: { path: "/status.json", label: "status" }
} as const satisfies Record<string, { readonly path: `/${string}`; readonly label: RouteLabel }>

/** A route's name in {@link routes}. */
export type RouteName = keyof typeof routes

const entries = Object.entries(routes) as Array<[RouteName, (typeof routes)[RouteName]]>

// Labels by exact path, and by the literal prefix of parameterised paths (`/content/` → content).
const exactLabel: ReadonlyMap<string, RouteLabel> = new Map(
  entries.filter(([, r]) => !r.path.includes(":")).map(([, r]) => [r.path, r.label])
)
const prefixLabels: ReadonlyArray<readonly [string, RouteLabel]> = entries
  .filter(([, r]) => r.path.includes(":"))
  .map(([, r]) => [r.path.slice(0, r.path.indexOf(":")), r.label] as const)

/**
 * The `route` label of a request target (`req.url`), from its path only: the query string
 * (search terms, ids) is never looked at beyond finding where it starts. A parameterised route
 * is recognised by its literal prefix followed by at least one character. No regex, no
 * allocation beyond one `slice`: it runs on the listener for every request.
 */
export const routeOf = (url: string | undefined): RouteLabel => {
  if (url === undefined) return "other"
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  const exact = exactLabel.get(path)
  if (exact !== undefined) return exact
  for (const [prefix, label] of prefixLabels) {
    if (path.length > prefix.length && path.startsWith(prefix)) return label
  }
  return "other"
}

const patterns = entries.map(([name, r]) => [name, r.path.split("/")] as const)

/** The route a path (no query string) matches exactly, with its parameters; `undefined` when none does. */
export const matchRoute = (
  path: string
): { readonly name: RouteName; readonly params: Readonly<Record<string, string>> } | undefined => {
  const segments = path.split("/")
  for (const [name, pattern] of patterns) {
    if (pattern.length !== segments.length) continue
    const params: Record<string, string> = {}
    let matched = true
    for (let i = 0; i < pattern.length && matched; i++) {
      const expected = pattern[i]!
      const actual = segments[i]!
      if (expected.startsWith(":")) {
        if (actual === "") matched = false
        else params[expected.slice(1)] = decodeURIComponent(actual)
      } else if (expected !== actual) matched = false
    }
    if (matched) return { name, params }
  }
  return undefined
}
