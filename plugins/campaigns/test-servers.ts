import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  to: string[];
  messageId: string;
  raw: string;
}

/**
 * An in-process SMTP server on 127.0.0.1 that keeps every message it accepts; `refuse()` true
 * answers the end of DATA with 552 instead (the message is not kept).
 */
export async function startSmtpSink(
  options: { refuse?: () => boolean } = {},
): Promise<{ port: number; mails: ReceivedMail[]; stop(): Promise<void> }> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (options.refuse?.()) return callback(Object.assign(new Error("mailbox full"), { responseCode: 552 }));
        const raw = Buffer.concat(chunks).toString("utf8");
        const messageId = /^Message-ID:\s*(\S+)/im.exec(raw)?.[1] ?? "";
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), messageId, raw });
        callback();
      });
    },
  });
  // A client killed mid-session resets its connection; that is expected here.
  server.on("error", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface ReceivedHook {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP receiver on 127.0.0.1 that answers `status()` and keeps every request. */
export async function startWebhookSink(
  status: () => number = () => 204,
): Promise<{ url: string; hooks: ReceivedHook[]; stop(): Promise<void> }> {
  const hooks: ReceivedHook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const code = status();
      if (code < 300) hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.statusCode = code;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hooks,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
