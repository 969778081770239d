/* The peer connection to the embedded relay (slot protocol, gateway/media/relay.py
 * SLOT_PROTOCOL): offer with a fresh media credential, watch its state, reconnect with back-off.
 * A used or dead connection's credential is never reused. */

import { ApiError, api } from "./api.js";
import { finish } from "./exit.js";
import { freshCredential } from "./join.js";
import { connectLiveKit } from "./livekit.js";
import { addSenders, teardownPc, updateSending } from "./media.js";
import { endScreen } from "./screens.js";
import { $, S, sleep } from "./state.js";
import { buildSlots, renderTiles } from "./tiles.js";
import { INVITE_ERRORS } from "./words.js";

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

export async function connectMedia() {
  const media = await freshCredential();
  if (S.finished) return;
  if (media && media.platform === "livekit") return connectLiveKit(media, reconnectMedia);
  if (!media || !media.credential) throw new Error("no media credential");
  teardownPc();
  const pc = new RTCPeerConnection({
    iceServers: media.ice_servers || [],
    bundlePolicy: "max-bundle",
  });
  S.pc = pc;
  addSenders(pc);
  buildSlots(pc, Math.max(0, Math.min(16, Number(media.slots) || 0)));
  pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await waitForIce(pc, 3000);
  S.credentialUsed = true;
  const answer = await api("/v1/media/offer", {
    credential: media.credential,
    sdp: pc.localDescription.sdp,
  });
  if (S.pc !== pc) return;
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  updateSending();
  renderTiles();
}

function onConnectionState(pc) {
  if (S.pc !== pc || S.finished) return;
  const state = pc.connectionState;
  const note = $("connection-note");
  if (state === "connected") {
    note.hidden = true;
  } else if (state === "failed") {
    reconnectMedia();
  } else if (state === "disconnected") {
    note.textContent = "The connection is unsteady. Trying to keep you connected...";
    note.hidden = false;
    setTimeout(() => {
      if (S.pc === pc && pc.connectionState === "disconnected") reconnectMedia();
    }, 5000);
  }
}

export async function reconnectMedia() {
  if (S.finished || S.reconnecting) return;
  S.reconnecting = true;
  const note = $("connection-note");
  note.textContent = "Reconnecting...";
  note.hidden = false;
  let wait = 1000;
  try {
    while (!S.finished) {
      try {
        S.credentialUsed = true; // a used or dead connection's credential is never reused
        await connectMedia();
        return;
      } catch (err) {
        if (err instanceof ApiError && String(err.code).startsWith("invite_")) {
          endScreen("You can't join with this link", INVITE_ERRORS[err.code] || INVITE_ERRORS.invite_invalid);
          finish(null);
          return;
        }
        if (err instanceof ApiError && err.code === "overloaded") {
          // The gateway is at capacity (sessions already running keep their quality): say so,
          // and try again no sooner than it asked.
          note.textContent = err.message;
          wait = Math.max(wait, 1000 * (Number(err.retryAfter) || 0));
        }
        await sleep(wait);
        wait = Math.min(wait * 2, 15000);
      }
    }
  } finally {
    S.reconnecting = false;
  }
}
