/**
 * Who is calling: the simulated site's permissions, roles, demo users, and how an
 * `Authorization` header maps to one of them (OAuth2 bearer tokens as simple_oauth issues them,
 * or basic auth).
 *
 * Role permissions are mutable per simulator instance (`user_permissions.add_permission_to_role`
 * grants for real), so user permission sets are computed from the live role table.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"

/** Every permission the simulated site defines, with its title and providing module. */
export const PERMISSIONS: ReadonlyArray<{ readonly id: string; readonly title: string; readonly provider: string }> = [
  { id: "access administration pages", title: "Use the administration pages and help", provider: "system" },
  { id: "access comments", title: "View comments", provider: "comment" },
  { id: "access content", title: "View published content", provider: "node" },
  { id: "access content overview", title: "Access the Content overview page", provider: "node" },
  { id: "access site in maintenance mode", title: "Use the site in maintenance mode", provider: "system" },
  { id: "access site reports", title: "View site reports", provider: "system" },
  { id: "access subscriber content", title: "View subscriber-only tutorials", provider: "drupalize_subscriptions" },
  { id: "access toolbar", title: "Use the toolbar", provider: "toolbar" },
  { id: "access user profiles", title: "View user information", provider: "user" },
  { id: "administer blocks", title: "Administer blocks", provider: "block" },
  { id: "administer comments", title: "Administer comments and comment settings", provider: "comment" },
  { id: "administer menu", title: "Administer menus and menu links", provider: "menu_ui" },
  { id: "administer modules", title: "Administer modules", provider: "system" },
  { id: "administer nodes", title: "Administer content", provider: "node" },
  { id: "administer permissions", title: "Administer permissions", provider: "user" },
  { id: "administer site configuration", title: "Administer site configuration", provider: "system" },
  { id: "administer taxonomy", title: "Administer vocabularies and terms", provider: "taxonomy" },
  { id: "administer themes", title: "Install and uninstall themes", provider: "system" },
  { id: "administer users", title: "Administer users", provider: "user" },
  { id: "bypass node access", title: "Bypass content access control", provider: "node" },
  { id: "cancel account", title: "Cancel own user account", provider: "user" },
  { id: "change own username", title: "Change own username", provider: "user" },
  { id: "create tutorial content", title: "Tutorial: Create new content", provider: "node" },
  { id: "delete any tutorial content", title: "Tutorial: Delete any content", provider: "node" },
  { id: "edit any tutorial content", title: "Tutorial: Edit any content", provider: "node" },
  { id: "post comments", title: "Post comments", provider: "comment" },
  { id: "skip comment approval", title: "Skip comment approval", provider: "comment" },
  { id: "use jsonrpc services", title: "Use JSON-RPC services", provider: "jsonrpc" },
  { id: "use text format basic_html", title: "Use the Basic HTML text format", provider: "filter" },
  { id: "use text format full_html", title: "Use the Full HTML text format", provider: "filter" },
  { id: "view own unpublished content", title: "View own unpublished content", provider: "node" },
  { id: "view the administration theme", title: "View the administration theme", provider: "system" }
]

/** Names of {@link PERMISSIONS}. */
export const PERMISSION_IDS: ReadonlySet<string> = new Set(PERMISSIONS.map((p) => p.id))

/** A role: machine name, label, entity UUID (for the `role` entity parameter) and grants. */
export interface RoleDefinition {
  readonly id: string
  readonly label: string
  readonly uuid: string
  /** Administrators have every permission whatever their grants. */
  readonly isAdmin: boolean
  readonly permissions: ReadonlyArray<string>
}

/** The site's roles at start. */
export const ROLES: ReadonlyArray<RoleDefinition> = [
  {
    id: "anonymous",
    label: "Anonymous user",
    uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c01",
    isAdmin: false,
    permissions: ["access content", "access comments", "use jsonrpc services"]
  },
  {
    id: "authenticated",
    label: "Authenticated user",
    uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c02",
    isAdmin: false,
    permissions: ["access content", "access comments", "post comments", "access user profiles", "use text format basic_html"]
  },
  {
    id: "member",
    label: "Member (free plan)",
    uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c03",
    isAdmin: false,
    permissions: ["use jsonrpc services", "skip comment approval"]
  },
  {
    id: "subscriber",
    label: "Subscriber",
    uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c04",
    isAdmin: false,
    permissions: ["use jsonrpc services", "skip comment approval", "access subscriber content"]
  },
  {
    id: "administrator",
    label: "Administrator",
    uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c05",
    isAdmin: true,
    permissions: []
  }
]

/** A site user. */
export interface SiteUser {
  readonly uid: number
  readonly name: string
  readonly roles: ReadonlyArray<string>
}

/** The anonymous user (no `Authorization` header). */
export const ANONYMOUS: SiteUser = { uid: 0, name: "anonymous", roles: ["anonymous"] }

/** The demo accounts: name → user. */
export const DEMO_USERS: { readonly [K in "admin" | "free" | "subscriber" | "norpc"]: SiteUser } = {
  admin: { uid: 1, name: "admin", roles: ["authenticated", "administrator"] },
  free: { uid: 2, name: "free", roles: ["authenticated", "member"] },
  subscriber: { uid: 3, name: "subscriber", roles: ["authenticated", "subscriber"] },
  norpc: { uid: 4, name: "norpc", roles: ["authenticated"] }
}

/**
 * Fixed OAuth2 bearer tokens of the demo users (`Authorization: Bearer <token>`):
 * `free` is a free-plan member, `subscriber` may read subscriber-only tutorials, `admin` has
 * every permission, `norpc` is signed in but lacks `use jsonrpc services` (every route answers 403).
 */
export const DEMO_TOKENS = {
  free: "demo-free-token",
  subscriber: "demo-subscriber-token",
  admin: "demo-admin-token",
  norpc: "demo-norpc-token"
} as const

/** Basic-auth credentials of the demo users (`user:password`, the password equals the name). */
export const DEMO_BASIC_AUTH = {
  free: { user: "free", password: "free" },
  subscriber: { user: "subscriber", password: "subscriber" },
  admin: { user: "admin", password: "admin" },
  norpc: { user: "norpc", password: "norpc" }
} as const

const TOKEN_USERS = new Map<string, SiteUser>(
  (Object.keys(DEMO_TOKENS) as Array<keyof typeof DEMO_TOKENS>).map((k) => [DEMO_TOKENS[k], DEMO_USERS[k]])
)
const BASIC_USERS = new Map<string, SiteUser>(
  (Object.keys(DEMO_BASIC_AUTH) as Array<keyof typeof DEMO_BASIC_AUTH>).map((k) => [
    `${DEMO_BASIC_AUTH[k].user}:${DEMO_BASIC_AUTH[k].password}`,
    DEMO_USERS[k]
  ])
)

/** Outcome of reading the `Authorization` header. */
export type Authentication =
  | { readonly _tag: "User"; readonly user: SiteUser }
  | { readonly _tag: "Rejected"; readonly scheme: "Bearer" }

/**
 * Maps an `Authorization` header to a user, as Drupal's providers do. No header, or a scheme no
 * provider handles, is the anonymous user. Wrong basic credentials are anonymous too: core's
 * `basic_auth` provider finds no account and the request goes on as anonymous (no 401). An
 * unknown bearer token is rejected: simple_oauth answers 401 with a `WWW-Authenticate` challenge.
 */
export const authenticate = (header: string | undefined): Authentication => {
  if (header === undefined || header.trim() === "") return { _tag: "User", user: ANONYMOUS }
  const space = header.indexOf(" ")
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase()
  const value = space < 0 ? "" : header.slice(space + 1).trim()
  if (scheme === "bearer") {
    const user = TOKEN_USERS.get(value)
    return user === undefined ? { _tag: "Rejected", scheme: "Bearer" } : { _tag: "User", user }
  }
  if (scheme === "basic") {
    const user = BASIC_USERS.get(Buffer.from(value, "base64").toString("utf8"))
    return { _tag: "User", user: user ?? ANONYMOUS }
  }
  return { _tag: "User", user: ANONYMOUS }
}

/** What `user.access_context` reports. */
export interface AccessContext {
  readonly uid: number
  readonly access_level: "anonymous" | "free" | "subscriber" | "admin"
  readonly roles: ReadonlyArray<string>
  /** sha256 of the permission set alone (kept for older specs; the gateway reads `access_hash`). */
  readonly permissions_hash: string
  /** sha256 over the values of every context in `contexts` (as the drupal/ module computes it). */
  readonly access_hash: string
  /**
   * The cache contexts `access_hash` covers: `user.permissions` and `user.node_grants:view`,
   * plus `user` when access depends on the individual user (as in core: "view own unpublished
   * content" without "bypass node access").
   */
  readonly contexts: ReadonlyArray<string>
}

/** The live role table of one simulator instance. */
export interface RoleTable {
  /** Role by machine name. */
  readonly get: (id: string) => RoleDefinition | undefined
  /** Role by UUID (the `role` entity parameter). */
  readonly byUuid: (uuid: string) => RoleDefinition | undefined
  /** Grants a known permission to a role (idempotent). */
  readonly grant: (roleId: string, permission: string) => void
  /** The user's effective permissions, sorted. */
  readonly permissionsOf: (user: SiteUser) => ReadonlyArray<string>
  /** Whether the user has the permission (administrators have all). */
  readonly has: (user: SiteUser, permission: string) => boolean
  /** Whether the user has an administrator role. */
  readonly isAdmin: (user: SiteUser) => boolean
  /** The `user.access_context` result. */
  readonly accessContext: (user: SiteUser) => AccessContext
}

/** A fresh role table with the start-up grants of {@link ROLES}. */
export const makeRoleTable = (): RoleTable => {
  const roles = new Map<string, { def: RoleDefinition; grants: Set<string> }>(
    ROLES.map((r) => [r.id, { def: r, grants: new Set(r.permissions) }])
  )
  const all = [...PERMISSION_IDS].sort()
  const isAdmin = (user: SiteUser) => user.roles.some((r) => roles.get(r)?.def.isAdmin === true)
  const permissionsOf = (user: SiteUser): ReadonlyArray<string> => {
    if (isAdmin(user)) return all
    const set = new Set<string>()
    for (const r of user.roles) for (const p of roles.get(r)?.grants ?? []) set.add(p)
    return [...set].sort()
  }
  const has = (user: SiteUser, permission: string) =>
    isAdmin(user) || user.roles.some((r) => roles.get(r)?.grants.has(permission) === true)
  // The node grants of the view operation: the site's subscription realm, bypassed by admins.
  const nodeGrants = (user: SiteUser): string =>
    isAdmin(user) ? "all" : has(user, "access subscriber content") ? "subscription:free,subscriber" : "subscription:free"
  return {
    get: (id) => {
      const r = roles.get(id)
      return r === undefined ? undefined : { ...r.def, permissions: [...r.grants].sort() }
    },
    byUuid: (uuid) => {
      for (const r of roles.values()) if (r.def.uuid === uuid) return { ...r.def, permissions: [...r.grants].sort() }
      return undefined
    },
    grant: (roleId, permission) => {
      roles.get(roleId)?.grants.add(permission)
    },
    permissionsOf,
    has,
    isAdmin,
    accessContext: (user) => {
      const permissions = permissionsOf(user)
      const permissionsHash = createHash("sha256").update(permissions.join("\n")).digest("hex")
      const bypass = has(user, "bypass node access")
      const perUser = !bypass && user.uid !== 0 && has(user, "view own unpublished content")
      const values: Array<[string, string]> = [
        ["user.node_grants:view", nodeGrants(user)],
        ["user.permissions", permissionsHash]
      ]
      if (perUser) values.push(["user", String(user.uid)])
      values.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      return {
        uid: user.uid,
        access_level: isAdmin(user)
          ? "admin"
          : has(user, "access subscriber content") && user.uid !== 0
          ? "subscriber"
          : user.uid === 0
          ? "anonymous"
          : "free",
        roles: user.roles,
        permissions_hash: permissionsHash,
        access_hash: createHash("sha256").update(values.map(([c, v]) => `[${c}]=${v}`).join("\n")).digest("hex"),
        contexts: values.map(([c]) => c)
      }
    }
  }
}
