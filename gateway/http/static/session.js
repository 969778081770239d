/* The join page: one page for every participant of a live session.
 *
 * Flow: read the invite token from the URL fragment (never sent to the server in a URL), drop
 * it from the address bar, POST /v1/join (password when asked), show what the session is and
 * whether it is recorded, check the camera, then connect to the embedded relay with the slot
 * protocol (gateway/media/relay.py SLOT_PROTOCOL) and follow POST /v1/live/events.
 *
 * Safety rules this page keeps on its side (the server enforces them anyway):
 *  - while held, no local track is attached to the peer connection: nothing leaves the device;
 *  - remote tiles are shown only while admitted with can_subscribe, labelled with the masked
 *    display name from the server (textContent only, never HTML);
 *  - "Report a concern" is visible on every screen once the page has an invite;
 *  - "Leave" always works: the peer connection is closed first, whatever the server answers.
 */
(function () {
  "use strict";

  const STORAGE_KEY = "sgw.invite";
  // The server forgets a seat that has not connected media within ~30 s of its join.
  const CREDENTIAL_MAX_AGE_MS = 20 * 1000;

  const S = {
    token: null,
    password: null,
    join: null,
    joinedAt: 0,
    credentialUsed: false,
    screen: "start",
    outcome: null,
    grants: { can_publish: false, can_subscribe: false, hidden: false },
    reasons: [],
    role: null,
    identity: null,
    displayName: null,
    session: null,
    pc: null,
    senders: { audio: null, video: null },
    slots: [],
    slotMap: {},
    localStream: null,
    micOn: true,
    camOn: true,
    eventsAbort: null,
    eventsConnected: false,
    eventsCount: 0,
    reconnecting: false,
    finished: null,
    roster: [],
    supervision: null,
    alerts: [],
    concerns: [],
    framesBase: 0,
    framesNow: 0,
    statsTimer: null,
  };

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---------------------------------------------------------------- words

  const REASONS = {
    awaiting_supervision: "Two adults from the organisation need to be in the session first.",
    no_participation_consent:
      "We do not have permission from your parent or carer for you to take part yet.",
    session_not_started: "The session has not started yet. Please try again nearer the time.",
    session_over: "The session has finished.",
    session_ended: "The session has finished.",
    outside_session_hours: "Sessions can only happen during the organisation's usual hours.",
    vetting_missing: "Your safety checks need to be recorded before you can take this part.",
    vetting_expired: "Your safety checks have expired and need renewing.",
    vetting_not_yet_valid: "Your safety checks are not valid yet.",
    vetting_kind_not_accepted: "Your safety checks are not the kind this session needs.",
    staff_role_not_allowed: "Your role does not allow you to take this part in the session.",
    role_mismatch: "This invite does not match this session.",
    participant_mismatch: "This invite does not match this session.",
    org_mismatch: "This invite does not match this session.",
    viewer_not_in_livestream: "This invite does not match this session.",
  };

  const INVITE_ERRORS = {
    invite_expired: "This invite has expired. Please ask the person who invited you for a new link.",
    invite_revoked: "This invite has been withdrawn. Please ask the person who invited you.",
    invite_other_device:
      "This link has already been used on another device. Please use the device you first " +
      "joined on, or ask the person who invited you for a new link.",
    invite_invalid: "This link does not work. Please check you copied all of it, or ask for a new one.",
  };

  const ROLE_WORDS = {
    host: "Host",
    observer: "Observer",
    child: "Young person",
    guardian: "Parent or carer",
    viewer: "Viewer",
  };

  const STATE_WORDS = {
    admitted: "In the session",
    present: "In the session",
    held: "Waiting (held)",
    left: "Left",
    invited: "Not joined yet",
  };

  const SUPERVISION_WORDS = {
    supervised: "Enough adults are present again.",
    grace: "An adult has left. Children will be held soon unless an adult returns.",
    breach: "Not enough adults are present: children are held.",
    no_children: "No children are in the session.",
  };

  const ALERT_WORDS = {
    supervision: (a) => {
      const count = a.required ? ` (${a.vetted_adults} of ${a.required} adults present)` : "";
      return `${SUPERVISION_WORDS[a.state] || "Supervision changed."}${count}`;
    },
    invite_other_device: (a) =>
      `Someone tried to use the invite of ${a.display_name || "a participant"} on another device.`,
    supervision_grace: () => "An adult has left. Children will be held unless an adult returns.",
    supervision_breach: () => "Fewer adults than needed are present: children are held.",
    adult_left: (a) => `${a.display_name || "An adult"} has left.`,
    concern: (a) => `${a.display_name || "Someone"} reported a concern.`,
    concern_reported: (a) => `${a.display_name || "Someone"} reported a concern.`,
  };

  function reasonWords(reasons) {
    const words = [];
    for (const reason of reasons || []) {
      if (String(reason).startsWith("consent:")) continue;
      const text = REASONS[reason] || null;
      if (text && !words.includes(text)) words.push(text);
    }
    if (!words.length && (reasons || []).length) {
      words.push("This session is not available to you right now.");
    }
    return words;
  }

  function contactWords() {
    const contact = S.session && S.session.safeguarding_contact;
    return contact || "the adult running the session, or your parent or carer";
  }

  function announce(text) {
    const el = $("announcer");
    el.textContent = "";
    // A fresh text node after a tick makes screen readers announce repeats too.
    setTimeout(() => { el.textContent = text; }, 50);
  }

  // ----------------------------------------------------------------- http

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, body, options) {
    const opts = options || {};
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
        keepalive: Boolean(opts.keepalive),
        signal: opts.signal,
      });
    } catch (err) {
      throw new ApiError(0, "network", "We could not reach the server. Check your connection.", null);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.status === 421 && data && data.location) {
      // The session runs on another gateway process: continue there (same site and cookie).
      location.replace(`${data.location}${location.pathname}${location.search}#${encodeURIComponent(S.token)}`);
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || `http_${response.status}`,
        error.message || `The server answered ${response.status}.`,
        response.headers.get("Retry-After"),
      );
    }
    return data;
  }

  // -------------------------------------------------------------- screens

  function show(screen) {
    S.screen = screen;
    for (const name of ["start", "check", "live", "end"]) {
      $(`screen-${name}`).hidden = name !== screen;
    }
    const heading = { start: "start-title", check: "check-title", live: "live-title", end: "end-title" };
    const target = screen === "live" && S.outcome === "hold" ? $("waiting-title") : $(heading[screen]);
    if (target) target.focus({ preventScroll: false });
  }

  function showTopButtons() {
    $("concern-open").hidden = !S.token;
    $("leave").hidden = !(S.join && !S.finished);
  }

  // ---------------------------------------------------------------- start

  function readToken() {
    let token = location.hash.length > 1 ? location.hash.slice(1) : "";
    if (token) {
      try {
        token = decodeURIComponent(token);
      } catch (err) {
        /* keep it as it is */
      }
      try {
        sessionStorage.setItem(STORAGE_KEY, token);
      } catch (err) {
        /* storage may be off: the page still works until it is reloaded */
      }
      history.replaceState(null, "", location.pathname + location.search);
      return token;
    }
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch (err) {
      return null;
    }
  }

  async function onContinue(event) {
    event.preventDefault();
    const button = $("continue");
    const error = $("start-error");
    error.textContent = "";
    if (!$("password-row").hidden) {
      S.password = $("password").value;
      if (!S.password) {
        error.textContent = "Please type the session password.";
        $("password").focus();
        return;
      }
    }
    button.disabled = true;
    try {
      const data = await api("/v1/join", joinBody());
      acceptJoin(data);
      if (data.outcome === "deny") {
        finish("denied");
        return;
      }
      prepareCheck();
    } catch (err) {
      startError(err);
    } finally {
      button.disabled = false;
    }
  }

  function joinBody() {
    const body = { token: S.token };
    if (S.password) body.password = S.password;
    return body;
  }

  function startError(err) {
    const error = $("start-error");
    if (err.code === "password_required") {
      $("password-row").hidden = false;
      $("password").focus();
      error.textContent = S.password ? "Please type the session password." : "";
      announce("This session needs a password.");
    } else if (err.code === "password_wrong") {
      $("password-row").hidden = false;
      error.textContent = "That password is not right. Please check it and try again.";
      $("password").select();
      $("password").focus();
    } else if (err.code === "too_many_attempts") {
      const minutes = Math.max(1, Math.ceil(Number(err.retryAfter || 60) / 60));
      error.textContent =
        `Too many tries. Please wait ${minutes} minute${minutes === 1 ? "" : "s"} and try again.`;
    } else if (INVITE_ERRORS[err.code] || String(err.code).startsWith("invite_")) {
      endScreen("You can't join with this link", INVITE_ERRORS[err.code] || INVITE_ERRORS.invite_invalid);
    } else {
      error.textContent = err.message || "Something went wrong. Please try again.";
    }
  }

  function acceptJoin(data) {
    S.join = data;
    S.joinedAt = Date.now();
    S.credentialUsed = false;
    S.outcome = data.outcome;
    S.reasons = data.reasons || [];
    S.grants = data.grants || S.grants;
    S.session = data.session || S.session;
    if (data.participant) {
      S.role = data.participant.role;
      S.identity = data.participant.identity;
      S.displayName = data.participant.display_name;
    }
    if (S.session && S.session.title) {
      $("session-title").textContent = S.session.title;
      document.title = `${S.session.title}: live session`;
    }
    showTopButtons();
  }

  // ---------------------------------------------------------------- check

  function publishes() {
    return S.role !== "viewer";
  }

  function prepareCheck() {
    const session = S.session || {};
    $("fact-title").textContent = session.title || "Live session";
    $("fact-name").textContent = S.displayName || "";
    $("fact-recording").textContent = recordingWords();
    $("fact-contact").textContent =
      `Press "Report a concern" at the top of the page at any time, or tell ${contactWords()}.`;
    $("check-hold-note").hidden = S.outcome !== "hold";
    $("device-check").hidden = !publishes();
    $("host-panel").hidden = S.role !== "host";
    show("check");
    if (publishes()) startCamera();
  }

  function recordingWords() {
    const session = S.session || {};
    if (!session.recording_purpose) return "This session is not recorded.";
    const notice = session.recording_notice ||
      `This session is recorded by the organisation (reason: ${session.recording_purpose}).`;
    return `${notice} If you do not want to be recorded, you can leave now and tell ${contactWords()}.`;
  }

  async function startCamera() {
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

  async function onEnter() {
    const button = $("enter");
    button.disabled = true;
    $("check-error").textContent = "";
    $("self-name").textContent = S.displayName || "";
    show("live");
    applyState(S.outcome, S.grants, S.reasons, false);
    startEvents();
    startStats();
    try {
      await connectMedia();
    } catch (err) {
      if (!S.finished) reconnectMedia();
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- media

  async function freshCredential() {
    const stale = S.credentialUsed || Date.now() - S.joinedAt > CREDENTIAL_MAX_AGE_MS;
    if (!stale && S.join && S.join.media) return S.join.media;
    const data = await api("/v1/join", joinBody()); // same device cookie: a new credential
    acceptJoin(data);
    if (data.outcome === "deny") {
      finish("denied");
      return null;
    }
    applyState(data.outcome, data.grants, data.reasons, true);
    return data.media || null;
  }

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

  function buildSlots(pc, count) {
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
      element.setAttribute("aria-labelledby", name.id);
      item.append(element, name);
      list.append(item);
      S.slots.push({ index: i, audio, video, stream, item, element, name });
    }
  }

  async function connectMedia() {
    const media = await freshCredential();
    if (S.finished) return;
    if (!media || !media.credential) throw new Error("no media credential");
    teardownPc();
    const pc = new RTCPeerConnection({
      iceServers: media.ice_servers || [],
      bundlePolicy: "max-bundle",
    });
    S.pc = pc;
    S.senders = { audio: null, video: null };
    if (publishes()) {
      // Send m-lines without tracks: nothing is sent until we are admitted (replaceTrack
      // needs no renegotiation, which the relay never does).
      S.senders.audio = pc.addTransceiver("audio", { direction: "sendonly" }).sender;
      S.senders.video = pc.addTransceiver("video", { direction: "sendonly" }).sender;
    }
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

  async function reconnectMedia() {
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
          await sleep(wait);
          wait = Math.min(wait * 2, 15000);
        }
      }
    } finally {
      S.reconnecting = false;
    }
  }

  function teardownPc() {
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

  function stopLocal() {
    if (!S.localStream) return;
    for (const track of S.localStream.getTracks()) track.stop();
    S.localStream = null;
  }

  function localTrack(kind) {
    if (!S.localStream) return null;
    return (kind === "audio" ? S.localStream.getAudioTracks() : S.localStream.getVideoTracks())[0] || null;
  }

  function sending() {
    return Boolean(S.outcome === "admit" && S.grants.can_publish && !S.finished);
  }

  function updateSending() {
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

  function toggle(kind) {
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

  function renderTiles() {
    const visible = S.outcome === "admit" && S.grants.can_subscribe && !S.finished;
    let shown = 0;
    for (const slot of S.slots) {
      const who = S.slotMap[String(slot.index)];
      const on = Boolean(visible && who);
      slot.item.hidden = !on;
      slot.element.muted = !on;
      slot.name.textContent = on ? String(who.display_name || "Participant") : "";
      if (on) {
        shown += 1;
        slot.element.play().catch(() => {});
      }
    }
    $("tiles-empty").hidden = shown > 0;
    $("tiles-empty").textContent =
      S.outcome === "hold" ? "You will see others here once the session is ready." :
      "Nobody else's video is showing yet.";
  }

  // ---------------------------------------------------------------- state

  function applyState(outcome, grants, reasons, notify) {
    const before = S.outcome;
    S.outcome = outcome;
    S.grants = grants || { can_publish: false, can_subscribe: false, hidden: false };
    S.reasons = reasons || [];
    if (outcome === "deny") {
      finish("denied");
      return;
    }
    const held = outcome === "hold";
    $("waiting").hidden = !held;
    updateSending();
    renderTiles();
    if (notify && before !== outcome) {
      if (held) {
        announce("You are waiting. Nobody can see or hear you.");
        if (S.screen === "live") $("waiting-title").focus();
      } else if (outcome === "admit") {
        announce("The session is ready. You can now see and hear others.");
      }
    }
  }

  // --------------------------------------------------------------- events

  async function startEvents() {
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
        S.alerts.unshift({ ...event, at: new Date() });
        renderAlerts();
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

  // ----------------------------------------------------------------- host

  function renderHost() {
    const sup = S.supervision;
    const line = $("supervision");
    if (sup) {
      const words = {
        supervised: "Children can take part.",
        grace: "An adult has left: children will be held soon unless an adult returns.",
        breach: "Not enough adults: children are held.",
        no_children: "No children are in the session.",
      };
      line.textContent =
        `${sup.vetted_adults} of ${sup.required} adults present. ${words[sup.state] || ""}`.trim();
      line.dataset.state = sup.state || "";
    }
    // Rows are keyed by identity and updated in place: a roster event every few seconds must
    // not take keyboard focus away or undo a half-confirmed "Remove".
    const body = $("roster");
    const rows = new Map();
    for (const row of Array.from(body.rows)) rows.set(row.dataset.identity, row);
    const seen = new Set();
    for (const person of S.roster) {
      const key = String(person.identity);
      seen.add(key);
      let row = rows.get(key);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.identity = key;
        for (let i = 0; i < 4; i++) row.append(document.createElement("td"));
      }
      body.append(row); // keeps the server's order
      const texts = [
        person.display_name || "Participant",
        ROLE_WORDS[person.role] || person.role || "",
        STATE_WORDS[person.state] || person.state || "",
      ];
      texts.forEach((text, i) => {
        if (row.cells[i].textContent !== String(text)) row.cells[i].textContent = String(text);
      });
      const actions = row.cells[3];
      const removable =
        person.identity !== S.identity && person.state !== "left" && person.state !== "invited";
      let button = actions.querySelector("button");
      if (removable && !button) {
        button = document.createElement("button");
        button.type = "button";
        button.className = "button button-small";
        button.textContent = "Remove";
        button.setAttribute("aria-label", `Remove ${person.display_name || "participant"}`);
        button.addEventListener("click", () => removeClicked(button, person));
        actions.append(button);
      } else if (!removable && button) {
        button.remove();
      }
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) row.remove();
    }
  }

  async function removeClicked(button, person) {
    const name = person.display_name || "participant";
    if (button.dataset.confirm !== "1") {
      button.dataset.confirm = "1";
      button.textContent = "Confirm remove";
      button.setAttribute("aria-label", `Confirm: remove ${name} from the session`);
      setTimeout(() => {
        if (button.isConnected && button.dataset.confirm === "1") {
          button.dataset.confirm = "";
          button.textContent = "Remove";
          button.setAttribute("aria-label", `Remove ${name}`);
        }
      }, 6000);
      return;
    }
    button.disabled = true;
    $("host-error").textContent = "";
    try {
      await api("/v1/live/remove", { token: S.token, identity: person.identity });
      announce(`${name} has been removed.`);
    } catch (err) {
      $("host-error").textContent = `Could not remove ${name}: ${err.message}`;
      button.disabled = false;
    }
  }

  function renderAlerts() {
    const list = $("alerts");
    list.textContent = "";
    for (const alert of S.alerts.slice(0, 50)) {
      const item = document.createElement("li");
      const words = ALERT_WORDS[alert.kind];
      const text = words ? words(alert) : String(alert.kind || "alert").replace(/_/g, " ");
      item.textContent = `${alert.at.toLocaleTimeString()}: ${text}`;
      list.append(item);
    }
    $("alerts-empty").hidden = S.alerts.length > 0;
  }

  async function endForEveryone() {
    $("host-error").textContent = "";
    $("end-yes").disabled = true;
    try {
      await api("/v1/live/end", { token: S.token });
      finish("ended_by_host");
    } catch (err) {
      $("host-error").textContent = `Could not end the session: ${err.message}`;
      $("end-yes").disabled = false;
    }
  }

  // -------------------------------------------------------------- concern

  function openConcern() {
    $("concern-error").textContent = "";
    const dialog = $("concern-dialog");
    if (!dialog.open) dialog.showModal();
    $("concern-note").focus();
  }

  async function sendConcern(event) {
    event.preventDefault();
    const send = $("concern-send");
    const note = $("concern-note").value.trim();
    send.disabled = true;
    $("concern-error").textContent = "";
    try {
      const body = { token: S.token };
      if (note) body.note = note;
      const data = await api("/v1/live/concern", body);
      S.concerns.push({ incident_id: data && data.incident_id, message: data && data.message });
      $("concern-note").value = "";
      $("concern-dialog").close();
      const confirmation = $("concern-confirmation");
      confirmation.textContent =
        (data && data.message) ||
        "Your concern is recorded and the safeguarding lead is being told.";
      confirmation.hidden = false;
      confirmation.focus();
    } catch (err) {
      $("concern-error").textContent =
        `We could not send this. Please tell ${contactWords()} straight away.`;
    } finally {
      send.disabled = false;
    }
  }

  // ---------------------------------------------------------------- leave

  async function leave() {
    if (S.finished) return;
    // Media stops first: leaving works even when the server cannot be reached.
    finish("left");
    try {
      await api("/v1/leave", { token: S.token }, { keepalive: true, signal: AbortSignal.timeout(8000) });
    } catch (err) {
      /* the relay also sees the connection close */
    }
  }

  function finish(why) {
    if (S.finished) return;
    S.finished = why || "error";
    if (S.eventsAbort) S.eventsAbort.abort();
    teardownPc();
    stopLocal();
    if (S.statsTimer) clearInterval(S.statsTimer);
    S.slotMap = {};
    renderTiles();
    const dialog = $("concern-dialog");
    showTopButtons();
    if (why === "left") {
      endScreen("You have left the session", "Your camera and microphone are off. You can close this page.");
      addRejoin();
    } else if (why === "removed") {
      endScreen("You have been removed from the session", "The host has removed you from this session.");
    } else if (why === "ended" || why === "ended_by_host") {
      endScreen("The session has ended", "Thank you for taking part. You can close this page.");
    } else if (why === "denied") {
      endScreen("You can't join this session right now", "", reasonWords(S.reasons));
    }
    if (dialog.open) $("concern-note").focus();
  }

  function endScreen(title, text, reasons) {
    $("end-title").textContent = title;
    $("end-text").textContent = text || "";
    const list = $("end-reasons");
    list.textContent = "";
    for (const reason of reasons || []) {
      const item = document.createElement("li");
      item.textContent = reason;
      list.append(item);
    }
    $("end-contact").textContent =
      `If something is worrying you, press "Report a concern" or tell ${contactWords()}.`;
    showTopButtons();
    show("end");
  }

  function addRejoin() {
    if ($("rejoin")) return;
    const button = document.createElement("button");
    button.type = "button";
    button.id = "rejoin";
    button.className = "button";
    button.textContent = "Join again";
    button.addEventListener("click", () => location.reload());
    $("screen-end").append(button);
  }

  // ---------------------------------------------------------------- stats

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

  function startStats() {
    if (S.statsTimer) return;
    S.statsTimer = setInterval(pollFrames, 500);
  }

  // ----------------------------------------------------------------- hook

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
        connection: S.pc ? S.pc.connectionState : null,
        events_connected: S.eventsConnected,
        events_received: S.eventsCount,
        slots,
        visible_tiles: S.slots.filter((s) => !s.item.hidden).map((s) => s.name.textContent),
        sending: sending() && Boolean(S.senders.video && S.senders.video.track),
        sending_tracks: ["audio", "video"].filter((k) => S.senders[k] && S.senders[k].track),
        finished: S.finished,
        concerns: S.concerns.slice(),
        roster: S.roster.slice(),
        supervision: S.supervision,
        alerts: S.alerts.map((a) => a.kind),
      };
    },
    framesReceived() {
      return S.framesBase + S.framesNow;
    },
  });

  // ----------------------------------------------------------------- boot

  function boot() {
    S.token = readToken();
    $("start-form").addEventListener("submit", onContinue);
    $("enter").addEventListener("click", onEnter);
    $("device-retry").addEventListener("click", startCamera);
    $("leave").addEventListener("click", leave);
    $("toggle-mic").addEventListener("click", () => toggle("audio"));
    $("toggle-cam").addEventListener("click", () => toggle("video"));
    $("concern-open").addEventListener("click", openConcern);
    $("concern-form").addEventListener("submit", sendConcern);
    $("concern-cancel").addEventListener("click", () => $("concern-dialog").close());
    $("concern-dialog").addEventListener("close", () => {
      if (!$("concern-open").hidden) $("concern-open").focus();
    });
    $("end-session").addEventListener("click", () => {
      $("end-confirm").hidden = false;
      $("end-no").focus();
    });
    $("end-no").addEventListener("click", () => {
      $("end-confirm").hidden = true;
      $("end-session").focus();
    });
    $("end-yes").addEventListener("click", endForEveryone);
    window.addEventListener("pagehide", () => {
      if (S.join && !S.finished && S.screen !== "start") {
        // Best effort on close or reload; the relay notices the closed connection anyway.
        fetch("/v1/leave", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: S.token }),
          credentials: "same-origin",
          keepalive: true,
        }).catch(() => {});
      }
    });
    showTopButtons();
    if (!S.token) {
      endScreen(
        "This link is not complete",
        "Please open the whole link from your invitation. If it still does not work, ask the " +
          "person who invited you for a new one.",
      );
      return;
    }
    show("start");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
  } else {
    boot();
  }
})();
