/* Media on LiveKit: the join answered with {platform: "livekit", url, token}, a token the
 * gateway minted just in time with explicit grants. This page connects to LiveKit with the
 * LiveKit JavaScript client, which the gateway serves itself (/static/vendor/livekit-client.js,
 * installed from the npm registry by the project's setup; nothing is fetched from elsewhere).
 *
 * What this page may do is decided by the server, not here: LiveKit enforces the token's grants
 * and the permission updates the session's authority makes (a hold takes publishing and
 * subscribing away). The page only publishes once LiveKit says it may, and shows what LiveKit
 * lets it receive. Names shown are the gateway's display names, as text only. */

import { publishes, $, S } from "./state.js";

const CLIENT = "/static/vendor/livekit-client.js";

let client = null;

async function loadClient() {
  if (!client) client = await import(CLIENT);
  return client;
}

/** Connect with a fresh LiveKit ticket. `onLost` is called when LiveKit drops us (or removes
 * us): the page then asks the gateway for a new join, which may well be refused. */
export async function connectLiveKit(media, onLost) {
  leaveLiveKit();
  S.credentialUsed = true; // a token is used once: a reconnect asks the gateway for a new one
  const lk = await loadClient();
  const room = new lk.Room({ adaptiveStream: true, dynacast: true });
  S.livekitRoom = room;
  room.on(lk.RoomEvent.TrackSubscribed, (track, _publication, participant) => {
    if (S.livekitRoom === room) showTrack(track, participant);
  });
  room.on(lk.RoomEvent.TrackUnsubscribed, (track, _publication, participant) => {
    track.detach().forEach((element) => element.remove());
    hideIfEmpty(participant);
  });
  room.on(lk.RoomEvent.ParticipantDisconnected, (participant) => removeTile(participant));
  room.on(lk.RoomEvent.ParticipantPermissionsChanged, () => {
    if (S.livekitRoom === room) publishIfAllowed(lk, room);
  });
  room.on(lk.RoomEvent.Disconnected, () => {
    if (S.livekitRoom !== room || S.finished) return;
    S.livekitRoom = null;
    clearTiles();
    onLost();
  });
  await room.connect(String(media.url), String(media.token), { autoSubscribe: true });
  $("connection-note").hidden = true;
  await publishIfAllowed(lk, room);
  emptyNote();
}

export function leaveLiveKit() {
  const room = S.livekitRoom;
  S.livekitRoom = null;
  clearTiles();
  if (room) room.disconnect().catch(() => {});
}

async function publishIfAllowed(lk, room) {
  const permissions = room.localParticipant.permissions;
  if (!permissions || !permissions.canPublish || !publishes() || !S.localStream) return;
  for (const track of S.localStream.getTracks()) {
    const source = track.kind === "audio" ? lk.Track.Source.Microphone : lk.Track.Source.Camera;
    if (room.localParticipant.getTrackPublication(source)) continue;
    try {
      await room.localParticipant.publishTrack(track, { source });
    } catch (err) {
      // Refused (a hold came first): LiveKit stays the judge; tried again on the next change.
    }
  }
}

function tileFor(participant) {
  const list = $("tiles");
  let item = list.querySelector(`li[data-livekit="${CSS.escape(participant.identity)}"]`);
  if (item) return item;
  item = document.createElement("li");
  item.className = "tile";
  item.dataset.livekit = participant.identity;
  const name = document.createElement("p");
  name.className = "tile-name";
  const label = document.createElement("span");
  label.className = "tile-label";
  label.textContent = String(participant.name || "Participant"); // text only, never HTML
  name.append(label);
  item.append(name);
  list.append(item);
  return item;
}

function showTrack(track, participant) {
  const item = tileFor(participant);
  const element = track.attach();
  element.playsInline = true;
  if (track.kind === "video") element.setAttribute("aria-label", item.textContent);
  item.prepend(element);
  emptyNote();
}

function hideIfEmpty(participant) {
  const item = $("tiles").querySelector(`li[data-livekit="${CSS.escape(participant.identity)}"]`);
  if (item && !item.querySelector("video, audio")) item.remove();
  emptyNote();
}

function removeTile(participant) {
  const item = $("tiles").querySelector(`li[data-livekit="${CSS.escape(participant.identity)}"]`);
  if (item) item.remove();
  emptyNote();
}

function clearTiles() {
  for (const item of $("tiles").querySelectorAll("li[data-livekit]")) item.remove();
  emptyNote();
}

function emptyNote() {
  const shown = $("tiles").querySelectorAll("li[data-livekit] video").length;
  $("tiles-empty").hidden = shown > 0;
  $("tiles-empty").textContent =
    S.outcome === "hold" ? "You will see others here once the session is ready." :
    "Nobody else's video is showing yet.";
}
