/**
 * The methods of the module's `jsonrpc_core` submodule, with their real ids, usage texts,
 * parameters and permissions, answering plausible results from the simulated site.
 *
 * `maintenance_mode.isEnabled` really switches the simulated site into maintenance mode (every
 * caller without `access site in maintenance mode` then gets HTTP 503), and
 * `user_permissions.add_permission_to_role` really grants the permission.
 *
 * @since 0.1.0
 */
import {
  ENTITY_FACTORY,
  fail,
  type MethodDefinition,
  ok,
  PAGINATION_FACTORY,
  RpcErrors,
  type Upcast,
  type Site
} from "./Methods.js"
import { PERMISSION_IDS, PERMISSIONS, type RoleDefinition } from "./Users.js"

const slice = <A>(entries: ReadonlyArray<readonly [string, A]>, page: unknown): Record<string, A> => {
  const p = (page ?? {}) as { limit?: number; offset?: number }
  const offset = p.offset ?? 0
  const end = p.limit === undefined ? undefined : offset + p.limit
  return Object.fromEntries(entries.slice(offset, end))
}

const plugin = (id: string, provider: string, cls: string, label: string) =>
  [id, { id, label, class: cls, provider }] as const

/** Plugin managers `plugins.list` knows, by service id. */
const PLUGIN_MANAGERS: Readonly<Record<string, ReadonlyArray<readonly [string, Record<string, string>]>>> = {
  "plugin.manager.block": [
    plugin("system_branding_block", "system", "Drupal\\system\\Plugin\\Block\\SystemBrandingBlock", "Site branding"),
    plugin("system_main_block", "system", "Drupal\\system\\Plugin\\Block\\SystemMainBlock", "Main page content"),
    plugin("system_menu_block:main", "system", "Drupal\\system\\Plugin\\Block\\SystemMenuBlock", "Main navigation"),
    plugin("page_title_block", "core", "Drupal\\Core\\Block\\Plugin\\Block\\PageTitleBlock", "Page title"),
    plugin("search_form_block", "search", "Drupal\\search\\Plugin\\Block\\SearchBlock", "Search form"),
    plugin("user_login_block", "user", "Drupal\\user\\Plugin\\Block\\UserLoginBlock", "User login")
  ],
  "plugin.manager.filter": [
    plugin("filter_html", "filter", "Drupal\\filter\\Plugin\\Filter\\FilterHtml", "Limit allowed HTML tags"),
    plugin("filter_autop", "filter", "Drupal\\filter\\Plugin\\Filter\\FilterAutoP", "Convert line breaks"),
    plugin("filter_url", "filter", "Drupal\\filter\\Plugin\\Filter\\FilterUrl", "Convert URLs into links"),
    plugin("filter_htmlcorrector", "filter", "Drupal\\filter\\Plugin\\Filter\\FilterHtmlCorrector", "Correct faulty HTML"),
    plugin("filter_html_escape", "filter", "Drupal\\filter\\Plugin\\Filter\\FilterHtmlEscape", "Display any HTML as plain text")
  ],
  "plugin.manager.field.formatter": [
    plugin("string", "core", "Drupal\\Core\\Field\\Plugin\\Field\\FieldFormatter\\StringFormatter", "Plain text"),
    plugin("text_default", "text", "Drupal\\text\\Plugin\\Field\\FieldFormatter\\TextDefaultFormatter", "Default"),
    plugin("entity_reference_label", "core", "Drupal\\Core\\Field\\Plugin\\Field\\FieldFormatter\\EntityReferenceLabelFormatter", "Label"),
    plugin("image", "image", "Drupal\\image\\Plugin\\Field\\FieldFormatter\\ImageFormatter", "Image")
  ],
  "plugin.manager.field.widget": [
    plugin("string_textfield", "core", "Drupal\\Core\\Field\\Plugin\\Field\\FieldWidget\\StringTextfieldWidget", "Textfield"),
    plugin("text_textarea", "text", "Drupal\\text\\Plugin\\Field\\FieldWidget\\TextareaWidget", "Text area (multiple rows)"),
    plugin("entity_reference_autocomplete", "core", "Drupal\\Core\\Field\\Plugin\\Field\\FieldWidget\\EntityReferenceAutocompleteWidget", "Autocomplete")
  ]
}

const cacheRebuild: MethodDefinition = {
  id: "cache.rebuild",
  usage: "Rebuilds the system cache.",
  access: ["administer site configuration"],
  execute: () => ok(true)
}

const routeBuilderRebuild: MethodDefinition = {
  id: "route_builder.rebuild",
  usage: "Rebuilds the application's router. Result is TRUE if the rebuild succeeded, FALSE otherwise",
  access: ["administer site configuration"],
  execute: () => ok(true)
}

const maintenanceMode: MethodDefinition = {
  id: "maintenance_mode.isEnabled",
  usage: "Enables or disables the maintenance mode.",
  access: ["administer site configuration"],
  params: { enabled: { description: "Whether the site is in maintenance mode", schema: { type: "boolean" } } },
  execute: ({ params, site }) => {
    if (typeof params.enabled === "boolean") site.state.maintenanceMode = params.enabled
    return ok(site.state.maintenanceMode)
  }
}

const pluginsList: MethodDefinition = {
  id: "plugins.list",
  usage: "List defined plugins.",
  access: ["administer site configuration"],
  params: {
    page: { factory: PAGINATION_FACTORY },
    service: { description: "The plugin manager service id", required: true, schema: { type: "string" } }
  },
  execute: ({ params, site }) => {
    const service = params.service as string
    if (service === "plugin.manager.jsonrpc_method") {
      const methods = site.registry.list().map((m) => [m.id, { id: m.id, usage: m.usage, provider: "jsonrpc" }] as const)
      return ok(slice(methods, params.page))
    }
    const definitions = PLUGIN_MANAGERS[service]
    if (definitions === undefined) {
      return fail(RpcErrors.invalidParams(`You have requested a non-existent service "${service}".`))
    }
    return ok(slice(definitions, params.page))
  }
}

const permissionsList: MethodDefinition = {
  id: "user_permissions.list",
  usage: "List all the permissions available in the site.",
  access: ["administer permissions"],
  params: { page: { factory: PAGINATION_FACTORY } },
  execute: ({ params }) =>
    ok(slice(PERMISSIONS.map((p) => [p.id, { title: p.title, provider: p.provider }] as const), params.page))
}

const upcastRole = (value: unknown, site: Site): Upcast => {
  const v = value as { type?: unknown; uuid?: unknown }
  const role: RoleDefinition | undefined = v.type === "user_role" && typeof v.uuid === "string"
    ? site.roles.byUuid(v.uuid)
    : undefined
  return role === undefined
    ? { _tag: "Invalid", data: "The requested entity could not be found." }
    : { _tag: "Value", value: role }
}

const addPermissionToRole: MethodDefinition = {
  id: "user_permissions.add_permission_to_role",
  usage: "Add the given permission to the specified role.",
  access: ["administer permissions"],
  params: {
    permission: { description: "The permission to grant", required: true, schema: { type: "string" } },
    role: { description: "The role: {type: \"user_role\", uuid}", required: true, factory: ENTITY_FACTORY, upcast: upcastRole }
  },
  execute: ({ params, site }) => {
    const permission = params.permission as string
    const role = params.role as RoleDefinition
    if (!PERMISSION_IDS.has(permission)) {
      return fail(RpcErrors.invalidParams([`Adding non-existent permissions to a role is not allowed.`]))
    }
    site.roles.grant(role.id, permission)
    // Drupal's EntityInterface::save() answers SAVED_UPDATED (2) for an existing role.
    return ok(2)
  }
}

/** The `jsonrpc_core` methods. */
export const coreMethods: ReadonlyArray<MethodDefinition> = [
  cacheRebuild,
  routeBuilderRebuild,
  maintenanceMode,
  pluginsList,
  permissionsList,
  addPermissionToRole
]
