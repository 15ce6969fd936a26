/** OpenAPI 3.1 description of the hub's REST API, served at `/api/openapi.json`. */
const error = { $ref: "#/components/responses/Error" };
const tooMany = { $ref: "#/components/responses/RateLimited" };
const unavailable = { $ref: "#/components/responses/Unavailable" };
const pageParams = [
  { name: "types", in: "query", schema: { type: "string" }, description: "Comma-separated activity types" },
  {
    name: "since",
    in: "query",
    schema: { type: "string" },
    description: "Inclusive lower bound on occurredAt (ISO-8601 or epoch ms)",
  },
  { name: "until", in: "query", schema: { type: "string" }, description: "Exclusive upper bound on occurredAt" },
  { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
  { name: "pageToken", in: "query", schema: { type: "string" }, description: "nextPageToken of the previous page" },
];
const page = { content: { "application/json": { schema: { $ref: "#/components/schemas/ActivityPage" } } } };
const json = (ref: string) => ({
  content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
});

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Activity Hub API",
    version: "1.0.0",
    description:
      "Ingest marketing activities and read them back. Every call is scoped to the tenant of its credentials. Errors have the body `{error: {code, message, details?: [{field, code, message}], retryAfter?}}`; `code` values are stable.",
  },
  servers: [{ url: "http://127.0.0.1:8800" }],
  security: [{ bearer: [] }],
  paths: {
    "/api/v1/activities": {
      post: {
        summary: "Ingest one activity or a batch",
        description:
          "Body: one activity, an array of activities, or `{activities: [...]}`; at most 1,000 activities and 1 MB. 202 means every accepted activity is durable in the queue and the store. A batch is all-or-nothing by default: any invalid item gives 400 with per-item errors and nothing is stored. With `?partial=true`, valid items are stored (202) and invalid ones are listed under `errors` with their index (`ids` holds null at their position). `Idempotency-Key` (or a per-activity `id`) makes retries safe: a retry returns the same ids and stores nothing twice.",
        security: [{ bearer: ["ingest"] }],
        parameters: [
          { name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 128 } },
          { name: "partial", in: "query", schema: { type: "boolean" } },
        ],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                oneOf: [
                  { $ref: "#/components/schemas/ActivityInput" },
                  { type: "array", items: { $ref: "#/components/schemas/ActivityInput" }, maxItems: 1000 },
                  {
                    type: "object",
                    properties: {
                      activities: { type: "array", items: { $ref: "#/components/schemas/ActivityInput" } },
                    },
                  },
                ],
              },
            },
          },
        },
        responses: {
          "202": json("IngestResult"),
          "400": error,
          "401": error,
          "403": error,
          "413": error,
          "415": error,
          "429": tooMany,
          "503": unavailable,
        },
      },
      get: {
        summary: "A tenant's activities by arrival, newest receivedAt first",
        description: "since/until bound receivedAt here (arrival), so incremental exports never miss a late activity.",
        security: [{ bearer: ["read"] }],
        parameters: pageParams,
        responses: { "200": page, "400": error, "401": error, "403": error },
      },
    },
    "/api/v1/activities/{id}": {
      get: {
        summary: "One activity by id",
        security: [{ bearer: ["read"] }],
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        responses: { "200": json("Activity"), "404": error },
      },
    },
    "/api/v1/leads/{leadId}/activities": {
      get: {
        summary: "A lead's history, newest first (use anon:<anonymousId> for a visitor)",
        security: [{ bearer: ["read"] }],
        parameters: [{ name: "leadId", in: "path", required: true, schema: { type: "string" } }, ...pageParams],
        responses: { "200": page, "400": error },
      },
    },
    "/api/v1/leads/{leadId}": {
      get: {
        summary: "Lead profile kept by the lead-profile consumer: counters and last activity",
        security: [{ bearer: ["read"] }],
        parameters: [{ name: "leadId", in: "path", required: true, schema: { type: "string" } }],
        responses: { "200": json("LeadProfile"), "404": error },
      },
    },
    "/api/v1/activity-types": {
      get: {
        summary: "Built-in and custom activity types",
        security: [{ bearer: ["read"] }],
        responses: { "200": { description: "Types" } },
      },
      post: {
        summary: "Define a custom activity type",
        security: [{ bearer: ["admin"] }],
        requestBody: json("ActivityTypeDefinition"),
        responses: { "201": json("ActivityTypeDefinition"), "400": error, "409": error },
      },
    },
    "/api/v1/activity-types/{name}": {
      put: {
        summary: "Replace a custom type",
        security: [{ bearer: ["admin"] }],
        requestBody: json("ActivityTypeDefinition"),
        responses: { "200": json("ActivityTypeDefinition"), "404": error },
      },
      delete: {
        summary: "Delete a custom type",
        security: [{ bearer: ["admin"] }],
        responses: { "204": { description: "Deleted" }, "404": error },
      },
    },
    "/api/v1/keys": {
      get: {
        summary: "List the tenant's keys (never their secrets)",
        security: [{ bearer: ["admin"] }],
        responses: { "200": { description: "Keys" } },
      },
      post: {
        summary: "Create a key; the secret is in this response only",
        security: [{ bearer: ["admin"] }],
        responses: { "201": { description: "Key" } },
      },
    },
    "/api/v1/keys/{keyId}": {
      delete: {
        summary: "Revoke a key",
        security: [{ bearer: ["admin"] }],
        responses: { "204": { description: "Revoked" } },
      },
    },
    "/api/v1/tenant": {
      get: {
        summary: "The caller's tenant",
        security: [{ bearer: ["read"] }],
        responses: { "200": { description: "Tenant" } },
      },
    },
    "/api/v1/audit": {
      get: {
        summary: "Audit log of administrative actions",
        security: [{ bearer: ["admin"] }],
        responses: { "200": { description: "Entries" } },
      },
    },
    "/api/v1/admin/tenants": {
      post: {
        summary: "Create a tenant (platform admin token)",
        responses: { "201": { description: "tenantId, apiKey, writeKey (shown once)" } },
      },
      get: { summary: "List tenants (platform admin token)", responses: { "200": { description: "Tenants" } } },
    },
    "/api/v1/admin/tenants/{tenantId}": {
      patch: { summary: "Change a tenant's quota or settings", responses: { "200": { description: "Tenant" } } },
      delete: { summary: "Delete a tenant and revoke its keys", responses: { "204": { description: "Deleted" } } },
    },
    "/api/v1/admin/reconcile": {
      post: {
        summary:
          "Check the suspect windows (failed writes, crashes) for queue/store divergence now (platform admin token); an optional body {since, until} (epoch ms or ISO-8601, at most reconciler.lookbackMs apart) adds a window",
        responses: {
          "200": {
            description:
              "The pass's report: windows, pendingWindows, checked, repairedToStore, storeChecked, repairedToQueue",
          },
          "400": error,
        },
      },
      get: { summary: "The last pass's report", responses: { "200": { description: "Report, or null" } } },
    },
    "/v1/track": {
      post: {
        summary: "Segment track",
        security: [{ writeKey: [] }],
        responses: { "200": json("SegmentResult"), "400": error },
      },
    },
    "/v1/page": {
      post: {
        summary: "Segment page",
        security: [{ writeKey: [] }],
        responses: { "200": json("SegmentResult"), "400": error },
      },
    },
    "/v1/screen": {
      post: {
        summary: "Segment screen",
        security: [{ writeKey: [] }],
        responses: { "200": json("SegmentResult"), "400": error },
      },
    },
    "/v1/identify": {
      post: {
        summary: "Segment identify",
        security: [{ writeKey: [] }],
        responses: { "200": json("SegmentResult"), "400": error },
      },
    },
    "/v1/batch": {
      post: {
        summary: "Segment batch (per-message acceptance)",
        security: [{ writeKey: [] }],
        responses: { "200": json("SegmentResult"), "400": error },
      },
    },
    "/health/live": { get: { summary: "Liveness", security: [], responses: { "200": { description: "Alive" } } } },
    "/health/ready": {
      get: {
        summary: "Readiness: queue, store and tenancy reachable",
        security: [],
        responses: { "200": { description: "Ready" }, "503": { description: "Not ready" } },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description: "API key `ahk_…` with scopes ingest, read, admin; or the platform admin token",
      },
      writeKey: {
        type: "http",
        scheme: "basic",
        description: "Segment write key `ahw_…` as user name, empty password",
      },
    },
    responses: {
      Error: {
        description: "Error",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      },
      RateLimited: {
        description: "Tenant quota exceeded; see Retry-After",
        headers: { "Retry-After": { schema: { type: "integer" } } },
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      },
      Unavailable: {
        description: "Queue or store unavailable, or the node is shutting down: nothing acknowledged; retry",
        headers: { "Retry-After": { schema: { type: "integer" } } },
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      },
    },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["code", "message"],
            properties: {
              code: {
                type: "string",
                examples: [
                  "validation_failed",
                  "unknown_type",
                  "rate_limited",
                  "unavailable",
                  "shutting_down",
                  "payload_too_large",
                  "invalid_json",
                ],
              },
              message: { type: "string" },
              retryAfter: { type: "integer" },
              details: {
                type: "array",
                items: {
                  type: "object",
                  properties: { field: { type: "string" }, code: { type: "string" }, message: { type: "string" } },
                },
              },
            },
          },
        },
      },
      ActivityInput: {
        type: "object",
        required: ["type"],
        additionalProperties: false,
        properties: {
          id: { type: "string", description: "Client id: retries carrying it are de-duplicated" },
          leadId: { type: "string" },
          anonymousId: { type: "string", description: "Required when leadId is absent" },
          type: {
            type: "string",
            description:
              "Built-in (visit_web_page, click_link, fill_out_form, email_*, change_data_value, change_score, add_to_list, remove_from_list, crm_sync, mobile_event, track_event, identify) or a custom type",
          },
          source: { enum: ["web", "email", "crm", "mobile", "api"] },
          occurredAt: {
            oneOf: [
              { type: "string", format: "date-time" },
              { type: "integer", description: "epoch milliseconds" },
            ],
            description:
              "ISO-8601 instant with a zone (stored in UTC) or epoch ms; within the last 10 years and at most 1 day ahead. A date that names no calendar day (2026-02-31, 24:00) is invalid_format. Defaults to receivedAt",
          },
          attributes: { type: "object" },
          campaignId: { type: "string" },
          accountId: { type: "string" },
        },
      },
      Activity: {
        allOf: [
          { $ref: "#/components/schemas/ActivityInput" },
          {
            type: "object",
            properties: {
              tenantId: { type: "string" },
              receivedAt: { type: "string", format: "date-time" },
              clientId: { type: "string" },
              schemaVersion: { type: "integer" },
            },
          },
        ],
      },
      ActivityPage: {
        type: "object",
        properties: {
          items: { type: "array", items: { $ref: "#/components/schemas/Activity" } },
          nextPageToken: { type: "string" },
        },
      },
      IngestResult: {
        type: "object",
        properties: {
          id: { type: "string", description: "Single-activity requests only" },
          accepted: { type: "integer" },
          rejected: { type: "integer" },
          ids: { type: "array", items: { type: ["string", "null"] } },
          errors: {
            type: "array",
            items: { type: "object", properties: { index: { type: "integer" }, errors: { type: "array" } } },
          },
        },
      },
      SegmentResult: {
        type: "object",
        properties: {
          success: { type: "boolean" },
          accepted: { type: "integer" },
          ids: { type: "array" },
          rejected: { type: "array" },
        },
      },
      LeadProfile: {
        type: "object",
        properties: {
          leadId: { type: "string" },
          activityCount: { type: "integer" },
          countsByType: { type: "object", additionalProperties: { type: "integer" } },
          firstActivityAt: { type: "string" },
          lastActivityAt: { type: "string" },
          lastActivityId: { type: "string" },
          lastActivityType: { type: "string" },
        },
      },
      ActivityTypeDefinition: {
        type: "object",
        required: ["name", "attributes"],
        properties: {
          name: { type: "string", pattern: "^[a-z][a-z0-9_]{1,63}$" },
          description: { type: "string" },
          defaultSource: { enum: ["web", "email", "crm", "mobile", "api"] },
          additionalAttributes: { type: "boolean" },
          attributes: {
            type: "object",
            additionalProperties: {
              type: "object",
              properties: {
                type: { enum: ["string", "text", "integer", "number", "boolean", "datetime", "url", "email", "json"] },
                required: { type: "boolean" },
                maxLength: { type: "integer" },
                enum: { type: "array", items: { type: "string" } },
              },
            },
          },
        },
      },
    },
  },
} as const;
