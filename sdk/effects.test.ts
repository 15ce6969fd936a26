import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { tempDir } from "../test/support/tmp";
import { EffectLedger, EffectNotPerformed, type CommitPoint, type EffectOptions } from "./effects";

/** A promise that never settles: the effect of a process killed in the middle of it. */
const forever = (): Promise<never> => new Promise<never>(() => undefined);

describe("EffectLedger commit point", () => {
  let tmp: ReturnType<typeof tempDir>;
  let ledgers: EffectLedger[];
  /** One process incarnation on the shared data dir; a second one plays the restart after a crash. */
  const incarnation = (): EffectLedger => {
    const ledger = new EffectLedger(tmp.dir, "unit");
    ledgers.push(ledger);
    return ledger;
  };
  let performed: number;
  const effect = async (): Promise<string> => {
    performed++;
    return "sent";
  };

  beforeEach(() => {
    tmp = tempDir("effects-");
    ledgers = [];
    performed = 0;
  });
  afterEach(() => {
    for (const ledger of ledgers) ledger.close();
    tmp.cleanup();
  });

  /**
   * Starts an effect in `ledger` that hangs (the crash), after its commit point or before it;
   * resolves once it got there.
   */
  async function crash(ledger: EffectLedger, key: string, options: EffectOptions, afterCommit: boolean): Promise<void> {
    let reached!: () => void;
    const there = new Promise<void>((resolve) => (reached = resolve));
    void ledger.once(
      key,
      async (commit: CommitPoint) => {
        if (afterCommit) await commit();
        reached();
        return forever();
      },
      options,
    );
    await there;
  }
  const crashAfterCommit = (ledger: EffectLedger, key: string) =>
    crash(ledger, key, { inDoubt: "skip", commitPoint: true }, true);

  it("performs again when the crash came before the commit point", async () => {
    await crash(incarnation(), "k", { inDoubt: "skip", commitPoint: true }, false);
    const result = await incarnation().once("k", effect, { inDoubt: "skip", commitPoint: true });
    assert.deepEqual(result, { performed: true, value: "sent" });
    assert.equal(performed, 1);
  });

  it("performs again when the effect failed before the commit point", async () => {
    const ledger = incarnation();
    await assert.rejects(
      ledger.once(
        "k",
        async () => {
          throw new Error("connection refused");
        },
        { inDoubt: "skip", commitPoint: true },
      ),
      /connection refused/,
    );
    assert.equal((await incarnation().once("k", effect, { inDoubt: "skip", commitPoint: true })).performed, true);
    assert.equal(performed, 1);
  });

  it("skips an effect left committing, and keeps it settled", async () => {
    await crashAfterCommit(incarnation(), "k");
    const restarted = incarnation();
    const result = await restarted.once("k", effect, { inDoubt: "skip", commitPoint: true });
    assert.deepEqual(result, { performed: false, reason: "in_doubt", value: undefined });
    assert.equal(performed, 0);
    assert.equal(restarted.isDone("k"), true);
    // Later deliveries, with either policy, neither perform it nor forget that it was in doubt.
    assert.equal((await incarnation().once("k", effect, { inDoubt: "repeat" })).performed, false);
    assert.equal(performed, 0);
  });

  it("repeats an effect left committing when the policy says so", async () => {
    await crashAfterCommit(incarnation(), "k");
    const result = await incarnation().once("k", effect, { inDoubt: "repeat", commitPoint: true });
    assert.deepEqual(result, { performed: true, value: "sent" });
    assert.equal(performed, 1);
  });

  it("treats an effect that failed after its commit point as in doubt, in the same process too", async () => {
    const ledger = incarnation();
    await assert.rejects(
      ledger.once(
        "k",
        async (commit) => {
          await commit();
          throw new Error("connection reset after the final dot");
        },
        { inDoubt: "skip", commitPoint: true },
      ),
      /connection reset/,
    );
    assert.equal((await ledger.once("k", effect, { inDoubt: "skip", commitPoint: true })).performed, false);
    assert.equal(performed, 0);
  });

  it("performs again after the receiver refused past the commit point", async () => {
    const ledger = incarnation();
    const refused = ledger.once(
      "k",
      async (commit) => {
        await commit();
        throw new EffectNotPerformed("550 mailbox unavailable");
      },
      { inDoubt: "skip", commitPoint: true },
    );
    await assert.rejects(refused, EffectNotPerformed);
    assert.deepEqual(await ledger.once("k", effect, { inDoubt: "skip", commitPoint: true }), {
      performed: true,
      value: "sent",
    });
    assert.equal(performed, 1);
  });

  it("clears the claim of an effect without commit point that the receiver refused", async () => {
    const ledger = incarnation();
    await assert.rejects(
      ledger.once(
        "k",
        async () => {
          throw new EffectNotPerformed("refused");
        },
        { inDoubt: "skip" },
      ),
      EffectNotPerformed,
    );
    assert.equal((await incarnation().once("k", effect, { inDoubt: "skip" })).performed, true);
  });

  it("never performs an effect recorded done, and returns its value", async () => {
    const first = incarnation();
    assert.deepEqual(await first.once("k", async () => "first"), { performed: true, value: "first" });
    const result = await incarnation().once("k", effect, { inDoubt: "repeat", commitPoint: true });
    assert.deepEqual(result, { performed: false, reason: "done", value: "first" });
    assert.equal(performed, 0);
  });

  it("answers in_progress while the same key runs", async () => {
    const ledger = incarnation();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const running = ledger.once("k", async (commit) => {
      await commit();
      await gate;
      return "late";
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await ledger.once("k", effect), { performed: false, reason: "in_progress", value: undefined });
    release();
    assert.deepEqual(await running, { performed: true, value: "late" });
  });

  it("keeps the claim-first behaviour of `skip` without commit point", async () => {
    await crash(incarnation(), "k", { inDoubt: "skip" }, false);
    const result = await incarnation().once("k", effect, { inDoubt: "skip" });
    assert.deepEqual(result, { performed: false, reason: "in_doubt", value: undefined });
    assert.equal(performed, 0);
  });
});
