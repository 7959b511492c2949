// Handshakes with the official CometD JavaScript client (long-polling via cometd-nodejs-client),
// subscribes with replay -2 and prints every event received. A manual wire-compatibility check of
// sfwa's streaming simulator; not part of CI.
//
//   cargo run --example streaming_sim          # in one terminal
//   npm install && node replay_all.mjs         # in this folder
//
// Env: SIM_URL (http://127.0.0.1:8765), SIM_TOKEN (good), CHANNEL, MAX_EVENTS (4).
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

adapt(); // XMLHttpRequest (with a cookie jar) for Node

const url = process.env.SIM_URL ?? "http://127.0.0.1:8765";
const token = process.env.SIM_TOKEN ?? "good";
const channel = process.env.CHANNEL ?? "/event/WhatsApp_Outbound__e";
const maxEvents = Number(process.env.MAX_EVENTS ?? 4);

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
  url: `${url}/cometd/62.0`,
  requestHeaders: { Authorization: `Bearer ${token}` },
  appendMessageTypeToURL: false,
  logLevel: process.env.COMETD_LOG ?? "info",
});

let received = 0;
cometd.addListener("/meta/connect", (reply) => {
  if (!reply.successful) console.error("connect failed:", JSON.stringify(reply));
});
cometd.handshake((reply) => {
  console.log("handshake:", JSON.stringify(reply));
  if (!reply.successful) process.exit(1);
  cometd.subscribe(
    channel,
    (event) => {
      console.log("event:", JSON.stringify(event));
      if (++received >= maxEvents) cometd.disconnect(() => process.exit(0));
    },
    (subscribed) => {
      console.log("subscribe:", JSON.stringify(subscribed));
      if (!subscribed.successful) process.exit(1);
    },
  );
});
