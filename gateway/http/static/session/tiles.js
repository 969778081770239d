/* Remote video tiles: one per relay slot, shown only while admitted with can_subscribe, and
 * labelled with the masked display name from the server (textContent only, never HTML). */

import { $, S } from "./state.js";
import { ROLE_WORDS } from "./words.js";

export function buildSlots(pc, count) {
  const list = $("tiles");
  list.textContent = "";
  S.slots = [];
  for (let i = 0; i < count; i++) {
    const audio = pc.addTransceiver("audio", { direction: "recvonly" });
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    const stream = new MediaStream([audio.receiver.track, video.receiver.track]);
    const item = document.createElement("li");
    item.className = "tile";
    item.hidden = true;
    item.dataset.slot = String(i);
    const element = document.createElement("video");
    element.autoplay = true;
    element.playsInline = true;
    element.muted = true; // unmuted only while the slot is shown
    element.srcObject = stream;
    const name = document.createElement("p");
    name.className = "tile-name";
    name.id = `tile-name-${i}`;
    const label = document.createElement("span");
    label.className = "tile-label";
    const role = document.createElement("span");
    role.className = "tile-role";
    name.append(label, role);
    element.setAttribute("aria-labelledby", name.id);
    item.append(element, name);
    list.append(item);
    S.slots.push({ index: i, audio, video, stream, item, element, name, label, role });
  }
}

export function renderTiles() {
  const visible = S.outcome === "admit" && S.grants.can_subscribe && !S.finished;
  let shown = 0;
  for (const slot of S.slots) {
    const who = S.slotMap[String(slot.index)];
    const on = Boolean(visible && who);
    slot.item.hidden = !on;
    slot.element.muted = !on;
    // The role tells a child the tutor from the observer (textContent only, never HTML).
    slot.label.textContent = on ? String(who.display_name || "Participant") : "";
    slot.role.textContent = on ? ROLE_WORDS[who.role] || "" : "";
    slot.role.hidden = !(on && ROLE_WORDS[who.role]);
    if (on) {
      shown += 1;
      slot.element.play().catch(() => {});
    }
  }
  shown += document.querySelectorAll("li[data-livekit] video").length; // tiles of livekit.js
  $("tiles-empty").hidden = shown > 0;
  $("tiles-empty").textContent =
    S.outcome === "hold" ? "You will see others here once the session is ready." :
    "Nobody else's video is showing yet.";
}
