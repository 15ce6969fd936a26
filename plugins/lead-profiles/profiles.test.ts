import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Activity } from "../../core/activity/model";
import { tempDir } from "../../test/support/tmp";
import { LeadProfiles } from "./profiles";

const activity = (id: string, leadId: string, type: string, occurredAt: string): Activity =>
  ({
    id,
    tenantId: "t1",
    leadId,
    type,
    source: "web",
    occurredAt,
    receivedAt: occurredAt,
    attributes: {},
    schemaVersion: 1,
  }) as unknown as Activity;

describe("lead profiles", () => {
  const tmp = tempDir("lead-profiles-");
  after(() => tmp.cleanup());

  it("counts each activity once across redeliveries and restarts, and keeps first and last", () => {
    let profiles = new LeadProfiles(tmp.dir);
    const a1 = activity("01A", "ada", "visit_web_page", "2026-11-01T10:00:00.000Z");
    const a2 = activity("01B", "ada", "email_opened", "2026-11-02T10:00:00.000Z");
    const a3 = activity("01C", "ada", "visit_web_page", "2026-10-30T10:00:00.000Z"); // late, older
    const b1 = activity("01D", "bob", "visit_web_page", "2026-11-01T11:00:00.000Z");
    assert.equal(profiles.apply([a1, a2, b1]), 3);
    assert.equal(profiles.apply([a2, a3]), 1, "a redelivered activity is not counted again");
    let ada = profiles.get("t1", "ada")!;
    assert.equal(ada.activityCount, 3);
    assert.deepEqual(ada.countsByType, { visit_web_page: 2, email_opened: 1 });
    assert.equal(ada.firstActivityAt, "2026-10-30T10:00:00.000Z");
    assert.equal(ada.lastActivityId, "01B");
    profiles.close();

    // A new instance reads what the first wrote; its cache starts empty.
    profiles = new LeadProfiles(tmp.dir);
    assert.equal(profiles.apply([a1, b1]), 0);
    assert.equal(profiles.apply([activity("01E", "ada", "email_opened", "2026-11-03T10:00:00.000Z")]), 1);
    ada = profiles.get("t1", "ada")!;
    assert.equal(ada.activityCount, 4);
    assert.deepEqual(ada.countsByType, { visit_web_page: 2, email_opened: 2 });
    assert.equal(ada.lastActivityType, "email_opened");
    assert.equal(profiles.get("t1", "bob")!.activityCount, 1);
    profiles.close();
  });
});
