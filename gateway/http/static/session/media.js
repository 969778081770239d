/* This device's camera and microphone, what it sends, and the peer connection's teardown and
 * frame counter. While held, no local track is attached to the peer connection: nothing leaves
 * the device. */

import { $, S, publishes } from "./state.js";

export async function startCamera() {
  const status = $("device-status");
  $("device-retry").hidden = true;
  if (S.localStream) {
    attachPreviews();
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status.textContent = "This browser cannot use a camera here. You can still go in.";
    return;
  }
  status.textContent = "Starting your camera and microphone...";
  try {
    S.localStream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
    });
    if (S.finished) {
      stopLocal();
      return;
    }
    attachPreviews();
    status.textContent = "Your camera and microphone are working.";
    updateSending();
  } catch (err) {
    status.textContent =
      "We could not start your camera or microphone. Check that the browser is allowed to use " +
      "them. You can still go in: others will not see or hear you.";
    $("device-retry").hidden = false;
  }
}

function attachPreviews() {
  for (const id of ["check-preview", "self-preview"]) {
    const video = $(id);
    if (video.srcObject !== S.localStream) video.srcObject = S.localStream;
    video.play().catch(() => {});
  }
}

export function stopLocal() {
  if (!S.localStream) return;
  for (const track of S.localStream.getTracks()) track.stop();
  S.localStream = null;
}

function localTrack(kind) {
  if (!S.localStream) return null;
  return (kind === "audio" ? S.localStream.getAudioTracks() : S.localStream.getVideoTracks())[0] || null;
}

/** Send m-lines without tracks: nothing is sent until admitted (replaceTrack needs no
 * renegotiation, which the relay never does). */
export function addSenders(pc) {
  S.senders = { audio: null, video: null };
  if (publishes()) {
    S.senders.audio = pc.addTransceiver("audio", { direction: "sendonly" }).sender;
    S.senders.video = pc.addTransceiver("video", { direction: "sendonly" }).sender;
  }
}

export function sending() {
  return Boolean(S.outcome === "admit" && S.grants.can_publish && !S.finished);
}

export function updateSending() {
  const on = sending();
  for (const kind of ["audio", "video"]) {
    const sender = S.senders[kind];
    if (!sender) continue;
    const wanted = on ? localTrack(kind) : null;
    if (sender.track !== wanted) sender.replaceTrack(wanted).catch(() => {});
  }
  const badge = $("self-visibility");
  if (!on) {
    badge.textContent = "Nobody can see or hear you";
  } else if (!S.localStream) {
    badge.textContent = "Others cannot see or hear you (no camera or microphone)";
  } else {
    const parts = [];
    if (S.camOn) parts.push("see");
    if (S.micOn) parts.push("hear");
    badge.textContent = parts.length
      ? `Others can ${parts.join(" and ")} you`
      : "Your camera and microphone are off";
  }
}

export function toggle(kind) {
  const key = kind === "audio" ? "micOn" : "camOn";
  S[key] = !S[key];
  const track = localTrack(kind);
  if (track) track.enabled = S[key];
  const button = kind === "audio" ? $("toggle-mic") : $("toggle-cam");
  button.setAttribute("aria-pressed", String(!S[key]));
  button.textContent =
    kind === "audio"
      ? S.micOn ? "Mute microphone" : "Unmute microphone"
      : S.camOn ? "Turn camera off" : "Turn camera on";
  updateSending();
}

export function teardownPc() {
  const pc = S.pc;
  S.pc = null;
  if (!pc) return;
  S.framesBase += S.framesNow;
  S.framesNow = 0;
  try {
    pc.close();
  } catch (err) {
    /* closing must never stop an exit */
  }
}

// Decoded video frames, read by the browser tests through window.sgw.framesReceived().
async function pollFrames() {
  const pc = S.pc;
  if (!pc) return;
  try {
    const report = await pc.getStats();
    let frames = 0;
    report.forEach((stat) => {
      if (stat.type === "inbound-rtp" && stat.kind === "video") frames += stat.framesDecoded || 0;
    });
    if (S.pc === pc) S.framesNow = frames;
  } catch (err) {
    /* a closed connection has no stats */
  }
}

export function startStats() {
  if (S.statsTimer) return;
  S.statsTimer = setInterval(pollFrames, 500);
}

export function stopStats() {
  if (S.statsTimer) clearInterval(S.statsTimer);
}
