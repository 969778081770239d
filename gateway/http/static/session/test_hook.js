/* window.sgw: a read-only view of the page's state for the browser tests (tests/browser),
 * which check what the page itself shows and decodes, never what the server says it sent. */

import { sending } from "./media.js";
import { S } from "./state.js";

export function installTestHook() {
  window.sgw = Object.freeze({
    state() {
      const slots = {};
      for (const [index, who] of Object.entries(S.slotMap)) {
        slots[index] = who && who.display_name;
      }
      return {
        screen: S.screen,
        outcome: S.outcome,
        reasons: S.reasons.slice(),
        grants: { ...S.grants },
        role: S.role,
        identity: S.identity,
        display_name: S.displayName,
        connection: S.pc ? S.pc.connectionState : S.livekitRoom ? S.livekitRoom.state : null,
        livekit_tiles: [...document.querySelectorAll("li[data-livekit]")]
          .filter((li) => li.querySelector("video"))
          .map((li) => li.querySelector(".tile-label").textContent),
        livekit_publishing: S.livekitRoom ? S.livekitRoom.localParticipant.trackPublications.size : 0,
        events_connected: S.eventsConnected,
        events_received: S.eventsCount,
        slots,
        visible_tiles: S.slots.filter((s) => !s.item.hidden).map((s) => s.label.textContent),
        visible_roles: S.slots.filter((s) => !s.item.hidden).map((s) => s.role.textContent),
        sending: sending() && Boolean(S.senders.video && S.senders.video.track),
        sending_tracks: ["audio", "video"].filter((k) => S.senders[k] && S.senders[k].track),
        finished: S.finished,
        concerns: S.concerns.slice(),
        roster: S.roster.slice(),
        supervision: S.supervision,
        alerts: S.alerts.map((a) => a.kind),
        mic_level: S.meter ? S.meter.level : null,
        devices: { ...S.devices },
        cam_on: S.camOn,
        mic_on: S.micOn,
      };
    },
    framesReceived() {
      return S.framesBase + S.framesNow;
    },
  });
}
