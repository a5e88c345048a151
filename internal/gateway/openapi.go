package gateway

import _ "embed"

// HandWrittenOpenAPI describes, in the OpenAPI document's own terms
// (Swagger 2.0 paths, parameters, definitions and tags), the routes this
// package writes by hand rather than from proto/: POST /predict and the
// Open Inference Protocol's /v2. cmd/shoal-openapi merges it into
// gen/openapi/shoal.swagger.json, so /openapi.json and the tools that read
// it (the console's API page, generated clients) see every route.
//
//go:embed handwritten.swagger.json
var HandWrittenOpenAPI []byte
