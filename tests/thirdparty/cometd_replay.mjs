// The official CometD JavaScript client (long-polling via cometd-nodejs-client) against the org
// simulator's /cometd endpoint: handshake, subscribe with replay -2 (Salesforce's replay extension
// written out by hand, as Salesforce's own CometD samples do), collect events, disconnect.
// jsforce_check.mjs calls checkOfficialCometd(); run alone for a manual look:
//
//   SIM_URL=http://127.0.0.1:PORT SIM_TOKEN=<access token> node cometd_replay.mjs
//
// Env when run alone: SIM_URL, SIM_TOKEN, CHANNEL (/event/WhatsApp_Outbound__e), MAX_EVENTS (4).
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

adapt(); // XMLHttpRequest (with a cookie jar) for Node

/** Resolves with the first `expected` event messages on `channel`, replayed from -2. */
export function checkOfficialCometd({ url, token, channel, expected, apiVersion = "62.0", logLevel = "warn" }) {
  return new Promise((resolve, reject) => {
    const cometd = new CometD();
    // Salesforce's replay extension: ask for replay on handshake, send the channel → position map on
    // subscribe (-2 = all retained events).
    cometd.registerExtension("replay", {
      outgoing(message) {
        if (message.channel === "/meta/handshake") {
          message.ext = { ...(message.ext ?? {}), replay: true };
        } else if (message.channel === "/meta/subscribe") {
          message.ext = { ...(message.ext ?? {}), replay: { [message.subscription]: -2 } };
        }
        return message;
      },
    });
    cometd.unregisterTransport("websocket"); // Salesforce offers long-polling only
    cometd.configure({
      url: `${url}/cometd/${apiVersion}`,
      requestHeaders: { Authorization: `Bearer ${token}` },
      appendMessageTypeToURL: false,
      logLevel,
    });
    const events = [];
    cometd.handshake((reply) => {
      if (!reply.successful) return reject(new Error(`handshake: ${JSON.stringify(reply)}`));
      cometd.subscribe(
        channel,
        (event) => {
          events.push(event);
          if (events.length === expected) cometd.disconnect(() => resolve(events));
        },
        (subscribed) => {
          if (!subscribed.successful) reject(new Error(`subscribe: ${JSON.stringify(subscribed)}`));
        },
      );
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const events = await checkOfficialCometd({
    url: process.env.SIM_URL ?? "http://127.0.0.1:8765",
    token: process.env.SIM_TOKEN ?? "good",
    channel: process.env.CHANNEL ?? "/event/WhatsApp_Outbound__e",
    expected: Number(process.env.MAX_EVENTS ?? 4),
    logLevel: process.env.COMETD_LOG ?? "info",
  });
  for (const event of events) console.log("event:", JSON.stringify(event));
  process.exit(0);
}
