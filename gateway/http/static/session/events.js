/* The live event stream (POST /v1/live/events, server-sent events over fetch): state, slots,
 * removal, end, alerts and roster, reconnecting with back-off until the page is finished. */

import { finish } from "./exit.js";
import { addAlert, renderHost } from "./host_panel.js";
import { S, sleep } from "./state.js";
import { showRecording } from "./recording.js";
import { renderTiles } from "./tiles.js";
import { applyState } from "./waiting.js";

export async function startEvents() {
  if (S.eventsAbort) return;
  const abort = new AbortController();
  S.eventsAbort = abort;
  let wait = 500;
  while (!S.finished && !abort.signal.aborted) {
    try {
      const response = await fetch("/v1/live/events", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ token: S.token }),
        credentials: "same-origin",
        cache: "no-store",
        signal: abort.signal,
      });
      if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
      S.eventsConnected = true;
      wait = 500;
      await readEvents(response.body);
    } catch (err) {
      if (abort.signal.aborted) break;
    } finally {
      S.eventsConnected = false;
    }
    if (S.finished || abort.signal.aborted) break;
    await sleep(wait);
    wait = Math.min(wait * 2, 10000);
  }
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let match;
    while ((match = /\r?\n\r?\n/.exec(buffer)) !== null) {
      const block = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue;
      let event;
      try {
        event = JSON.parse(data);
      } catch (err) {
        continue;
      }
      S.eventsCount += 1;
      onEvent(event);
      if (S.finished) return;
    }
  }
}

function onEvent(event) {
  switch (event.type) {
    case "state":
      applyState(event.outcome, event.grants, event.reasons, true);
      break;
    case "slots":
      S.slotMap = event.slots || {};
      renderTiles();
      break;
    case "removed":
      finish("removed");
      break;
    case "ended":
      finish("ended");
      break;
    case "alert":
      S.alerts.push({ ...event, at: new Date() });
      addAlert(S.alerts[S.alerts.length - 1]);
      break;
    case "recording":
      showRecording(event);
      break;
    case "roster":
      S.roster = event.participants || [];
      S.supervision = event.supervision || null;
      renderHost();
      break;
    default:
      break;
  }
}
