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
    S.localStream = await navigator.mediaDevices.getUserMedia(constraints());
    if (S.finished) {
      stopLocal();
      return;
    }
    attachPreviews();
    status.textContent = "Your camera and microphone are working.";
    updateSending();
    startMeter();
    listDevices();
  } catch (err) {
    status.textContent =
      "We could not start your camera or microphone. Check that the browser is allowed to use " +
      "them. You can still go in: others will not see or hear you.";
    $("device-retry").hidden = false;
  }
}

function constraints() {
  const video = { width: { ideal: 640 }, height: { ideal: 480 } };
  if (S.devices.video) video.deviceId = { exact: S.devices.video };
  const audio = S.devices.audio ? { deviceId: { exact: S.devices.audio } } : true;
  return { audio, video };
}

/** The camera and microphone lists, once the browser lets the page see their names. */
async function listDevices() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch (err) {
    return;
  }
  const using = {
    audio: (localTrack("audio") || {}).getSettings?.().deviceId,
    video: (localTrack("video") || {}).getSettings?.().deviceId,
  };
  for (const [kind, id, row] of [
    ["videoinput", "camera-choice", "camera-choice-row"],
    ["audioinput", "mic-choice", "mic-choice-row"],
  ]) {
    const select = $(id);
    const found = devices.filter((d) => d.kind === kind && d.deviceId);
    select.textContent = "";
    found.forEach((device, i) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`;
      select.append(option);
    });
    const current = using[kind === "videoinput" ? "video" : "audio"];
    if (current) select.value = current;
    $(row).hidden = found.length === 0;
  }
}

/** A different camera or microphone: the preview restarts with it (nothing is sent yet). */
export async function chooseDevice(kind, deviceId) {
  S.devices[kind] = deviceId || null;
  stopMeter();
  stopLocal();
  await startCamera();
}

// The microphone level meter (Web Audio): a child can see the microphone hears them before
// anyone else can.
function startMeter() {
  stopMeter();
  const track = localTrack("audio");
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!track || !Context) return;
  try {
    const context = new Context();
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const meter = { context, level: 0, timer: null };
    meter.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      meter.level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      $("mic-level").value = S.micOn ? meter.level : 0;
    }, 100);
    if (context.state === "suspended") context.resume().catch(() => {});
    S.meter = meter;
  } catch (err) {
    S.meter = null;
  }
}

export function stopMeter() {
  const meter = S.meter;
  S.meter = null;
  if (!meter) return;
  clearInterval(meter.timer);
  meter.context.close().catch(() => {});
}

/** "Camera on" and "Microphone on" chosen before going in: applied to the tracks and the
 * in-session buttons, so a child who chose camera off is never seen on arrival. */
export function applyStartChoices() {
  S.camOn = $("start-cam").checked;
  S.micOn = $("start-mic").checked;
  for (const kind of ["audio", "video"]) {
    const track = localTrack(kind);
    if (track) track.enabled = kind === "audio" ? S.micOn : S.camOn;
  }
  labelToggles();
  updateSending();
}

/** The check screen's own "Camera on"/"Microphone on" boxes switch the preview's tracks. */
export function previewChoice() {
  const cam = localTrack("video");
  const mic = localTrack("audio");
  if (cam) cam.enabled = $("start-cam").checked;
  if (mic) mic.enabled = $("start-mic").checked;
  S.camOn = $("start-cam").checked;
  S.micOn = $("start-mic").checked;
}

function attachPreviews() {
  for (const id of ["check-preview", "self-preview"]) {
    const video = $(id);
    if (video.srcObject !== S.localStream) video.srcObject = S.localStream;
    video.play().catch(() => {});
  }
}

export function stopLocal() {
  stopMeter();
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
  labelToggles();
  updateSending();
}

function labelToggles() {
  const mic = $("toggle-mic");
  mic.setAttribute("aria-pressed", String(!S.micOn));
  mic.textContent = S.micOn ? "Mute microphone" : "Unmute microphone";
  const cam = $("toggle-cam");
  cam.setAttribute("aria-pressed", String(!S.camOn));
  cam.textContent = S.camOn ? "Turn camera off" : "Turn camera on";
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
