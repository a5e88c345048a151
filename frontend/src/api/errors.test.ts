import { describe as group, expect, it } from "vitest";
import { ApiError, describe, toApiError } from "./errors";

group("toApiError and describe", () => {
  const cases: { name: string; body: unknown; status: number; code: string; text: string }[] = [
    { name: "gateway JSON", body: { code: 3, message: "epochs must be positive", details: [] }, status: 400, code: "INVALID_ARGUMENT", text: "Invalid request: epochs must be positive" },
    { name: "gateway JSON as text", body: '{"code":12,"message":"augmentation is not implemented","details":[]}', status: 501, code: "UNIMPLEMENTED", text: "Not supported: augmentation is not implemented" },
    { name: "message already says it", body: { code: 5, message: "not found: model \"x\"" }, status: 404, code: "NOT_FOUND", text: 'not found: model "x"' },
    { name: "empty message", body: { code: 14, message: "" }, status: 503, code: "UNAVAILABLE", text: "Service unavailable" },
    { name: "plain text from a proxy", body: "request body too large", status: 413, code: "UNKNOWN", text: "request body too large" },
    { name: "an HTML error page", body: "<html><body>Bad Gateway</body></html>", status: 502, code: "UNKNOWN", text: "HTTP 502" },
    { name: "nothing at all", body: undefined, status: 500, code: "UNKNOWN", text: "HTTP 500" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = toApiError(c.body, c.status);
      expect(e).toBeInstanceOf(ApiError);
      expect(e.code).toBe(c.code);
      expect(e.status).toBe(c.status);
      expect(describe(e)).toBe(c.text);
      expect(describe(e)).not.toContain("{");
    });
  }

  it("describes network failures and other errors", () => {
    expect(describe(new TypeError("Failed to fetch"))).toBe("Cannot reach the server (Failed to fetch)");
    expect(describe(new Error("boom"))).toBe("boom");
    expect(describe("plain")).toBe("plain");
  });
});
