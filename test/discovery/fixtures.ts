/**
 * The discovery example of drupal-jsonrpc.md, verbatim (between the String.raw backticks).
 */
export const docExample = String.raw`
{
  "data": [
    {
      "type": "JsonRpcMethod",
      "id": "content.search",
      "attributes": {
        "usage": "Search tutorials.",
        "params": {
          "query": { "type": "JsonRpcParameterDefinition", "id": "query",
                     "attributes": { "description": "Search terms", "required": true, "schema": { "type": "string", "minLength": 1 } },
                     "schema": { "type": "string", "minLength": 1 } },
          "page":  { "type": "JsonRpcParameterDefinition", "id": "page",
                     "attributes": { "factory": "\\Drupal\\jsonrpc\\ParameterFactory\\PaginationParameterFactory" },
                     "schema": { "type": "object", "properties": { "limit": { "type": "integer", "minimum": 0 }, "offset": { "type": "integer", "minimum": 0 } } } }
        }
      },
      "links": { "self": "https://site/jsonrpc/methods/content.search", "collection": "https://site/jsonrpc/methods" }
    }
  ],
  "links": { "self": "https://site/jsonrpc/methods" }
}
`
