/**
 * V8 flags the hub's process runs with: `npm start` passes the same ones (package.json), and so
 * does every benchmark or test that starts `core/main.ts`.
 *
 * `--max-semi-space-size=64` (MB; V8's default tops out at 16): an ingest request's objects (the
 * parsed batch, its activities, their JSON) live until both writes are durable, tens of
 * milliseconds. With the default young generation a scavenge runs every few requests and copies
 * all of the requests in flight, then promotes them; with 64 MB most of them are dead by the next
 * scavenge. Measured with bench:ingest: about 4 % less CPU per activity. V8 reads the flag only at
 * start-up (`v8.setFlagsFromString` is too late for the heap's sizes).
 */
export const HUB_NODE_FLAGS = ["--max-semi-space-size=64"];
