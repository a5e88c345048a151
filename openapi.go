// Package shoal holds the files the whole module shares: the REST API's
// OpenAPI document, which `make generate` writes from proto/ and the
// gateway serves at /openapi.json.
package shoal

import _ "embed"

// OpenAPI is gen/openapi/shoal.swagger.json: the REST API under /v1 as
// Swagger 2.0 (OpenAPI 2), in the REST voice (64-bit integers as numbers).
//
//go:embed gen/openapi/shoal.swagger.json
var OpenAPI []byte
